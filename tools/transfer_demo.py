"""Small, real transfer runs on CPU (numbers quoted in docs/transfer.md).

From the Fashion-MNIST demo pre-training (32 px single garments):

    bash tools/run_demo.sh mae      # -> work_dirs/demo_mae/iter_800.pth
    #    (or a shorter one: python tools/transfer_demo.py pretrain --iters 400)
    # Fashion-MNIST classification: fine-tune from it vs from scratch,
    # same iterations, same data, same recipe (scratch without layer decay)
    python tools/transfer_demo.py classify --checkpoint work_dirs/demo_mae/iter_800.pth
    # partial fine-tuning: only the last K blocks (+ fc_norm, head) train
    python tools/transfer_demo.py classify --checkpoint ... --modes finetune \
        --trainable-blocks 1 --tag _last1
    # Mask R-CNN / UperNet on the canvas sets, from the same checkpoint,
    # and from scratch (--checkpoint none, no layer decay) for comparison
    python tools/transfer_demo.py detect --checkpoint ... --iters 300
    python tools/transfer_demo.py detect --checkpoint none --iters 300 --tag _scratch
    python tools/transfer_demo.py segment --checkpoint ... --iters 300

Each of these steps appends its metrics to ``<work-dir>/results.json``.

The label-scarcity table (pre-training on the canvases themselves):

    python tools/transfer_demo.py table --work-dir work_dirs/transfer_canvas
    python tools/transfer_demo.py report --work-dir work_dirs/transfer_canvas

``table`` writes the canvas sets, pre-trains MAE (configs/demo/mae_canvas.py)
and iTPN (configs/demo/itpn_canvas.py) on the *unlabelled* training
canvases, then fine-tunes Mask R-CNN and UperNet on a fraction of the
labelled canvases (a random subset per seed, the same canvases for both
tasks) with the same iterations and batch for every start:

- ``scratch-vit``: the MAE configs' ViT, random init, no layer decay;
- ``mae``: the same ViT from the MAE canvas pre-training;
- ``scratch-hivit``: the iTPN configs' HiViT and pyramid, random init, no
  layer decay;
- ``itpn-fresh``: the HiViT from the iTPN pre-training, a fresh pyramid;
- ``itpn-integral``: the HiViT *and* the pyramid from the pre-training;
- controls, not in the default table: ``mae-permuted``, the MAE
  checkpoint with every tensor's entries shuffled (the pre-trained weights'
  scale without what they learned); ``itpn-permuted-pyramid``, the iTPN
  HiViT with a shuffled copy of its pre-trained pyramid.

It is resumable: the pre-trainings resume from their last checkpoint,
finished fine-tuning runs (keys ``task/start/fraction/seed`` of
``<work-dir>/table.json``) are skipped, each new one is appended when it
ends. ``report`` prints the mean, spread and count of every cell;
``features --starts ...`` what each start's detector computes at its first
step on validation canvases (how its channels share the variance).
``--pretrain-options itpn.model.backbone.reference_init=False`` changes a
pre-training's config, ``--pretrain-config mae=...`` replaces it (both
recorded in ``<work-dir>/results.json``; a work dir keeps one pre-training
per method).
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import time

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmmim.utils.checkpoint import load_checkpoint_file, unwrap_state_dict

CLS_CFG = 'configs/benchmarks/classification/demo_mae-vit_ft_fashion-mnist.py'
DET_CFG = ('configs/benchmarks/mask_rcnn/'
           'canvas_mae-vit-demo_simple-fpn_mask-rcnn.py')
SEG_CFG = 'configs/benchmarks/upernet/canvas_mae-vit-demo_upernet.py'
# the table's: encoders pre-trained on the canvases (patch 8 at 64 px)
MAE_DET_CFG = ('configs/benchmarks/mask_rcnn/'
               'canvas_mae-vit-canvas_simple-fpn_mask-rcnn.py')
MAE_SEG_CFG = 'configs/benchmarks/upernet/canvas_mae-vit-canvas_upernet.py'
ITPN_DET_CFG = ('configs/benchmarks/mask_rcnn/'
                'canvas_itpn-hivit-canvas_pyramid_mask-rcnn.py')
ITPN_SEG_CFG = 'configs/benchmarks/upernet/canvas_itpn-hivit-canvas_upernet.py'
PRETRAIN_CFG = dict(mae='configs/demo/mae_canvas.py',
                    itpn='configs/demo/itpn_canvas.py')
# start -> (backbone family, pre-training loaded into the backbone, into
# the neck); None: random init (and no layer decay)
STARTS = {
    'scratch-vit': ('vit', None, None),
    'mae': ('vit', 'mae', None),
    'scratch-hivit': ('hivit', None, None),
    'itpn-fresh': ('hivit', 'itpn', None),
    'itpn-integral': ('hivit', 'itpn', 'itpn'),
    # controls: a checkpoint with the entries of every tensor shuffled (each
    # tensor keeps its values, hence its scale; what was learned goes)
    'mae-permuted': ('vit', 'mae-permuted', None),
    'itpn-permuted-pyramid': ('hivit', 'itpn', 'itpn-permuted'),
}
# run on request (--starts), not by default
CONTROLS = ('mae-permuted', 'itpn-permuted-pyramid')
TASK_CFG = dict(detect=dict(vit=MAE_DET_CFG, hivit=ITPN_DET_CFG),
                segment=dict(vit=MAE_SEG_CFG, hivit=ITPN_SEG_CFG))


def _iter_schedule(cfg, iters, warmup, last='cosine'):
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters,
                         val_interval=iters)
    warmup = min(warmup, iters // 2)
    tail = (dict(type='CosineAnnealingLR', T_max=iters - warmup,
                 eta_min=1e-6, by_epoch=False, begin=warmup, end=iters)
            if last == 'cosine' else
            dict(type='PolyLR', eta_min=0., power=1., by_epoch=False,
                 begin=warmup, end=iters))
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0,
             end=warmup), tail
    ]
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=iters,
        max_keep_ckpts=1)
    cfg.log_processor = dict(by_epoch=False)


def _test_only(cfg):
    """Evaluate once, after training (runner.test), not also in a val loop."""
    cfg.test_dataloader = cfg.val_dataloader
    cfg.test_evaluator = cfg.val_evaluator
    cfg.test_cfg = cfg.get('test_cfg') or dict(type='TestLoop')
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None


def _init_backbone(cfg, args):
    """Start from ``args.checkpoint``, or from scratch when it is 'none'.

    From scratch there is nothing to protect in the early layers, so the
    layer decay goes too (as for classification's scratch run);
    ``--layer-decay`` overrides the config's rate for a pre-trained start.
    """
    if not args.checkpoint:
        sys.exit("--checkpoint is needed: a pre-training checkpoint, or "
                 "'none' to train from scratch")
    if args.checkpoint == 'none':
        cfg.model.backbone.init_cfg = None
        cfg.optim_wrapper.paramwise_cfg.layer_decay_rate = 1.0
    else:
        cfg.model.backbone.init_cfg.checkpoint = args.checkpoint
        if args.layer_decay is not None:
            cfg.optim_wrapper.paramwise_cfg.layer_decay_rate = \
                args.layer_decay


def _record(work_dir, key, value):
    path = osp.join(work_dir, 'results.json')
    results = json.load(open(path)) if osp.isfile(path) else {}
    results[key] = value
    with open(path, 'w') as f:
        json.dump(results, f, indent=2)
    print(key, json.dumps(value, indent=2))


def pretrain(args):
    cfg = Config.fromfile('configs/demo/mae_fashion-mnist.py')
    cfg.work_dir = osp.join(args.work_dir, 'pretrain')
    cfg.train_dataloader.batch_size = args.batch_size
    cfg.train_dataloader.num_workers = 1
    cfg.train_dataloader.persistent_workers = False
    _iter_schedule(cfg, args.iters, warmup=max(args.iters // 12, 1))
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=20)
    t0 = time.time()
    Runner.from_cfg(cfg).train()
    ckpt = osp.join(cfg.work_dir, f'iter_{args.iters}.pth')
    _record(args.work_dir, 'pretrain',
            dict(iters=args.iters, batch_size=args.batch_size,
                 checkpoint=ckpt, minutes=round((time.time() - t0) / 60, 1)))


def classify(args):
    out = {}
    for mode in args.modes:
        cfg = Config.fromfile(CLS_CFG)
        cfg.work_dir = osp.join(args.work_dir, f'cls_{mode}')
        _iter_schedule(cfg, args.iters, warmup=max(args.iters // 10, 1))
        cfg.train_dataloader.batch_size = args.batch_size
        cfg.train_dataloader.dataset.num_samples = args.train_samples
        cfg.val_dataloader.dataset.num_samples = args.test_samples
        _test_only(cfg)
        if mode == 'finetune':
            cfg.model.backbone.init_cfg.checkpoint = args.checkpoint
            if args.layer_decay is not None:
                cfg.optim_wrapper.paramwise_cfg.layer_decay_rate = \
                    args.layer_decay
            if args.trainable_blocks is not None:
                # partial fine-tuning: only the last k blocks (+ head) train
                depth = cfg.model.backbone.arch['num_layers']
                if not 0 <= args.trainable_blocks <= depth:
                    raise SystemExit(f'--trainable-blocks must be in '
                                     f'[0, {depth}]')
                cfg.model.backbone.frozen_stages = \
                    depth - args.trainable_blocks
        else:
            # from scratch: mmpretrain's ViT init, no layer decay (the
            # better choice without pre-training)
            cfg.model.backbone.init_cfg = None
            cfg.model.backbone.init_mode = 'default'
            cfg.optim_wrapper.paramwise_cfg.layer_decay_rate = 1.0
        t0 = time.time()
        runner = Runner.from_cfg(cfg)
        runner.train()
        metrics = runner.test()
        out[mode] = dict(top1=round(float(metrics['accuracy/top1']), 2),
                         minutes=round((time.time() - t0) / 60, 1))
    out.update(iters=args.iters, batch_size=args.batch_size,
               trainable_blocks=args.trainable_blocks,
               train_samples=args.train_samples,
               test_samples=args.test_samples, checkpoint=args.checkpoint)
    _record(args.work_dir, 'classify_' + '+'.join(args.modes) + args.tag,
            out)


def _canvas(args):
    """The work dir's canvas sets (written once, then checked)."""
    root = osp.join(args.work_dir, 'canvas')
    ann = osp.join(root, 'coco', 'annotations', 'instances_{}.json')
    if not osp.isfile(ann.format('val')):
        from mmmim.datasets.canvas import make_canvas_sets
        make_canvas_sets(root, args.canvas_train, args.canvas_val)
    for split, n in (('train', args.canvas_train), ('val', args.canvas_val)):
        have = len(json.load(open(ann.format(split)))['images'])
        if have != n:
            raise ValueError(f'{root} has {have} {split} canvases, not {n}: '
                             'use another --work-dir or the same counts')
    return root


def _train_test_record(cfg, args, task: str, kept_metrics) -> None:
    """Train the downstream config, test it, and record ``kept_metrics`` of
    the test metrics under ``task + args.tag``."""
    _test_only(cfg)
    _init_backbone(cfg, args)
    t0 = time.time()
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    _record(args.work_dir, task + args.tag,
            dict(kept_metrics(metrics),
                 iters=args.iters, checkpoint=args.checkpoint,
                 layer_decay=cfg.optim_wrapper.paramwise_cfg.layer_decay_rate,
                 minutes=round((time.time() - t0) / 60, 1)))


def detect(args):
    root = _canvas(args)
    cfg = Config.fromfile(DET_CFG)
    cfg.work_dir = osp.join(args.work_dir, 'mask_rcnn')
    _iter_schedule(cfg, args.iters, warmup=max(args.iters // 12, 1))
    data_root = osp.join(root, 'coco') + '/'
    for dl in (cfg.train_dataloader, cfg.val_dataloader):
        dl.dataset.data_root = data_root
    cfg.val_evaluator.ann_file = data_root + 'annotations/instances_val.json'
    _train_test_record(cfg, args, 'detect', lambda metrics: {
        k: round(float(v), 3) for k, v in metrics.items()
        if k.endswith(('_mAP', '_mAP_50'))})


def segment(args):
    root = _canvas(args)
    cfg = Config.fromfile(SEG_CFG)
    cfg.work_dir = osp.join(args.work_dir, 'upernet')
    _iter_schedule(cfg, args.iters, warmup=max(args.iters // 12, 1),
                   last='poly')
    for dl in (cfg.train_dataloader, cfg.val_dataloader):
        dl.dataset.data_root = osp.join(root, 'ade')
    _train_test_record(cfg, args, 'segment', lambda metrics: {
        k: round(float(v), 2) for k, v in metrics.items()})


# ------------------------------------------------ label-scarcity table
def label_subset(num_train, fraction, seed):
    """Sorted indices of the labelled training canvases of one run.

    A random ``fraction`` (at least one canvas) drawn with ``seed``; canvas
    ``i`` is image ``i`` of the COCO set and class map ``i`` of the ADE-style
    set, so detection and segmentation see the same canvases.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f'fraction must be in (0, 1], got {fraction}')
    k = max(1, int(round(fraction * num_train)))
    if k == num_train:
        return list(range(num_train))
    perm = np.random.default_rng(seed).permutation(num_train)
    return sorted(int(i) for i in perm[:k])


def canvas_pretrain(args, method):
    """Pre-train ``method`` on the unlabelled training canvases (resumable).

    Returns the checkpoint path.
    """
    iters = args.pretrain_iters
    work_dir = osp.join(args.work_dir, f'pretrain_{method}')
    ckpt = osp.join(work_dir, f'iter_{iters}.pth')
    config = args.pretrain_config.get(method, PRETRAIN_CFG[method])
    options = args.pretrain_options.get(method, {})
    path = osp.join(args.work_dir, 'results.json')
    done = json.load(open(path)).get(f'pretrain_{method}') \
        if osp.isfile(path) else None
    # a checkpoint made with another config or options is another
    # pre-training
    # (compared as stored: JSON turns tuples into lists)
    if done is not None and (done['config'], done.get('options', {})) != (
            config, json.loads(json.dumps(options))):
        raise ValueError(
            f"{work_dir} was pre-trained with {done['config']} and options "
            f"{done.get('options', {})}, not {config} and {options}: use "
            'another --work-dir')
    if osp.isfile(ckpt):
        return ckpt
    root = _canvas(args)
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options)
    cfg.work_dir = work_dir
    cfg.experiment_name = f'pretrain_{method}'
    # the canvas images (a --pretrain-config may read another data set:
    # configs/demo/mae_canvas_garments.py)
    if cfg.train_dataloader.dataset.type == 'CustomDataset':
        cfg.train_dataloader.dataset.data_root = osp.join(root, 'coco')
    cfg.train_dataloader.persistent_workers = False
    warmup = max(iters // 10, 1)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters)
    cfg.param_scheduler[0].end = warmup
    cfg.param_scheduler[1].update(T_max=iters - warmup, begin=warmup,
                                  end=iters)
    # checkpoints along the way: an interrupted pre-training resumes
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False,
        interval=min(args.pretrain_ckpt_interval, iters), max_keep_ckpts=1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=20)
    cfg.resume = True
    # recorded before training, so that a resumed run is checked too
    _record(args.work_dir, f'pretrain_{method}',
            dict(iters=iters, config=config, options=options))
    t0 = time.time()
    Runner.from_cfg(cfg).train()
    _record(args.work_dir, f'pretrain_{method}',
            dict(iters=iters, checkpoint=ckpt, config=config,
                 options=options, minutes=round((time.time() - t0) / 60, 1)))
    return ckpt


def permuted_checkpoint(ckpt, seed=0):
    """``ckpt`` with the entries of every floating tensor of its state dict
    randomly permuted (written once beside it, ``*_permuted.pth``).

    A control for what a pre-trained start brings: the permuted tensors
    keep their values, norms and spread, the structure the pre-training
    learned is gone.
    """
    out = ckpt[:-len('.pth')] + '_permuted.pth'
    if osp.isfile(out):
        return out
    state = unwrap_state_dict(load_checkpoint_file(ckpt))
    gen = torch.Generator().manual_seed(seed)
    permuted = {
        k: (v.flatten()[torch.randperm(v.numel(), generator=gen)].view_as(v)
            if v.is_floating_point() else v)
        for k, v in state.items()}
    torch.save(dict(state_dict=permuted,
                    meta=dict(permuted_from=ckpt, seed=seed)), out)
    return out


def pretrained_checkpoint(args, source):
    """The checkpoint of a start's ``source`` (``mae``, ``itpn``, or
    either with ``-permuted``), pre-training it first where needed."""
    method, _, variant = source.partition('-')
    ckpt = canvas_pretrain(args, method)
    return permuted_checkpoint(ckpt) if variant == 'permuted' else ckpt


def _start_checkpoints(args):
    """{source: checkpoint} for the backbones and necks of ``args.starts``."""
    sources = {src for s in args.starts for src in STARTS[s][1:]} - {None}
    return {m: pretrained_checkpoint(args, m) for m in sorted(sources)}


def pretrain_canvas(args):
    """Only the pre-trainings of ``table`` (MAE and iTPN on the canvases)."""
    for method in ('mae', 'itpn'):
        print(canvas_pretrain(args, method))


def _finetune_cfg(args, task, start, fraction, seed, ckpts):
    family, backbone_from, neck_from = STARTS[start]
    cfg = Config.fromfile(TASK_CFG[task][family])
    key = f'{task}/{start}/{fraction:g}/{seed}'
    cfg.work_dir = osp.join(args.work_dir, key.replace('/', '_'))
    cfg.experiment_name = key.replace('/', '_')
    cfg.randomness = dict(seed=seed)
    root = _canvas(args)
    indices = label_subset(args.canvas_train, fraction, seed)
    iters, batch_size = ((args.det_iters, args.det_batch_size)
                         if task == 'detect' else
                         (args.seg_iters, args.seg_batch_size))
    if task == 'detect':
        _iter_schedule(cfg, iters, warmup=max(iters // 12, 1))
        data_root = osp.join(root, 'coco') + '/'
        for dl in (cfg.train_dataloader, cfg.val_dataloader):
            dl.dataset.data_root = data_root
        cfg.val_evaluator.ann_file = (
            data_root + 'annotations/instances_val.json')
    else:
        _iter_schedule(cfg, iters, warmup=max(iters // 12, 1), last='poly')
        for dl in (cfg.train_dataloader, cfg.val_dataloader):
            dl.dataset.data_root = osp.join(root, 'ade')
    cfg.train_dataloader.batch_size = batch_size
    cfg.train_dataloader.dataset.indices = indices
    lr = args.det_lr if task == 'detect' else args.seg_lr
    if lr is not None:  # the same peak lr for every start
        cfg.optim_wrapper.optimizer.lr = lr
    cfg.default_hooks.checkpoint = dict(  # nothing to keep
        type='CheckpointHook', interval=10**9, save_last=False)
    _test_only(cfg)
    bb_init = cfg.model.backbone.init_cfg
    neck_init = cfg.model.neck.get('init_cfg')
    if backbone_from is None:
        cfg.model.backbone.init_cfg = None
        cfg.optim_wrapper.paramwise_cfg.layer_decay_rate = 1.0
    else:
        bb_init.checkpoint = ckpts[backbone_from]
        if args.layer_decay is not None:
            cfg.optim_wrapper.paramwise_cfg.layer_decay_rate = \
                args.layer_decay
    if neck_init is not None:
        if neck_from is None:
            cfg.model.neck.init_cfg = None
        else:
            neck_init.checkpoint = ckpts[neck_from]
    info = dict(task=task, start=start, fraction=fraction, seed=seed,
                labelled=len(indices), iters=iters,
                batch_size=batch_size, lr=cfg.optim_wrapper.optimizer.lr,
                layer_decay=cfg.optim_wrapper.paramwise_cfg.layer_decay_rate,
                backbone=backbone_from and ckpts[backbone_from],
                neck=neck_from and ckpts[neck_from])
    return key, cfg, info


def _table_path(args):
    return osp.join(args.work_dir, f'{args.table}.json')


def _load_table(args):
    path = _table_path(args)
    return json.load(open(path)) if osp.isfile(path) else {}


def _metrics(metrics, task):
    digits = 3 if task == 'detect' else 2
    return {k.split('/')[-1]: round(float(v), digits)
            for k, v in metrics.items()
            if k.endswith(('_mAP', '_mAP_50', 'mIoU', 'aAcc', 'mAcc'))}


class _CurveHook(Hook):
    """Keeps the metrics of every validation during training."""

    def __init__(self):
        self.points = {}

    def after_val_epoch(self, runner, metrics=None):
        self.points[runner.iter] = metrics or {}


def _finetune(cfg, info, task, eval_interval):
    """Train, evaluate; with ``eval_interval`` also along the way."""
    curve = _CurveHook()
    if eval_interval:
        cfg.val_dataloader = cfg.test_dataloader
        cfg.val_evaluator = cfg.test_evaluator
        cfg.val_cfg = dict(type='ValLoop')
        cfg.train_cfg.val_interval = eval_interval
    runner = Runner.from_cfg(cfg)
    runner.register_hook(curve, priority='LOWEST')
    runner.train()
    last = curve.points.get(runner.iter)
    metrics = last if last is not None else runner.test()
    info.update(_metrics(metrics, task))
    if eval_interval:
        info['curve'] = {it: _metrics(m, task)
                         for it, m in sorted(curve.points.items())}


def table(args):
    """Every (task, start, fraction, seed) run not in the table yet."""
    os.makedirs(args.work_dir, exist_ok=True)
    _canvas(args)
    ckpts = _start_checkpoints(args)
    for seed in args.seeds:
        for fraction in args.fractions:
            for task in args.tasks:
                for start in args.starts:
                    key, cfg, info = _finetune_cfg(args, task, start,
                                                   fraction, seed, ckpts)
                    done = _load_table(args).get(key)
                    if done is not None:
                        budget = ('iters', 'batch_size', 'labelled', 'lr',
                                  'layer_decay')
                        # a run recorded without one of them (an older
                        # table) is another budget too
                        if any(done.get(k) != info[k] for k in budget):
                            raise ValueError(
                                f'{_table_path(args)} has {key} with another '
                                'budget: use another --table or --work-dir')
                        continue
                    t0 = time.time()
                    _finetune(cfg, info, task, args.eval_interval)
                    info['minutes'] = round((time.time() - t0) / 60, 1)
                    results = _load_table(args)  # re-read: append only
                    results[key] = info
                    with open(_table_path(args), 'w') as f:
                        json.dump(results, f, indent=2)
                    print(key, json.dumps(info))


def feature_stats(maps):
    """How the channels of ``maps`` (N, C, H, W) spread their variance.

    Returns the RMS, the effective rank (participation ratio of the
    channel covariance's eigenvalues: 1 when one direction holds all the
    variance, C when every direction holds the same), the shares of the
    first and the first five principal directions, and the share of the
    variance that is a function of the position alone (the same for every
    image).
    """
    tokens = maps.flatten(2).transpose(1, 2).double()  # N, HW, C
    flat = tokens.reshape(-1, tokens.shape[-1])
    centred = flat - flat.mean(0)
    eig = torch.linalg.eigvalsh(centred.T @ centred / len(flat)).flip(0)
    eig = eig.clamp(min=0)
    total = eig.sum()
    position = tokens.mean(0).var(0, unbiased=False).sum()
    return dict(rms=float(flat.pow(2).mean().sqrt()),
                eff_rank=float(total**2 / eig.pow(2).sum()),
                top1=float(eig[0] / total), top5=float(eig[:5].sum() / total),
                position=float(position / total))


def self_share(backbone, x, positions=16, seed=0):
    """How local the backbone's last map is: blank one token's pixels
    (set them to the batch mean) and measure how the map changes; the share
    of the change (L2 over channels, summed over tokens) that falls on that
    token itself, averaged over ``positions`` random tokens. 1: each output
    token sees only its own pixels; 1 / tokens: the change spreads evenly.
    """
    with torch.no_grad():
        ref = backbone(x)[-1]
        grid = ref.shape[-2:]
        cell = x.shape[-2] // grid[0], x.shape[-1] // grid[1]
        gen = torch.Generator().manual_seed(seed)
        picks = torch.randperm(grid[0] * grid[1], generator=gen)[:positions]
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        shares = []
        for idx in picks.tolist():
            i, j = divmod(idx, grid[1])
            blanked = x.clone()
            blanked[..., i * cell[0]:(i + 1) * cell[0],
                    j * cell[1]:(j + 1) * cell[1]] = mean
            delta = (backbone(blanked)[-1] - ref).norm(dim=1)  # N, H, W
            shares.append(delta[:, i, j] / delta.flatten(1).sum(1))
    return float(torch.cat(shares).mean())


def features(args):
    """``feature_stats`` of each start's detector at its first step (the
    backbone's last map and every neck level) and the ``self_share`` of its
    backbone, on the first 64 validation canvases: what the heads see
    before any fine-tuning."""
    import mmcv
    from mmdet.registry import MODELS as DET_MODELS
    from mmengine.registry import DefaultScope
    root = _canvas(args)
    ckpts = _start_checkpoints(args)
    ann = json.load(open(osp.join(root, 'coco', 'annotations',
                                  'instances_val.json')))
    files = [osp.join(root, 'coco', 'val', im['file_name'])
             for im in sorted(ann['images'], key=lambda im: im['id'])[:64]]
    images = [torch.from_numpy(mmcv.imread(f)).permute(2, 0, 1)
              for f in files]
    rows = ['| start | backbone RMS | eff. rank | top-1 | top-5 | position '
            'share | self share | neck levels: eff. rank |', '|---' * 8 + '|']
    for start in args.starts:
        _, cfg, _ = _finetune_cfg(args, 'detect', start, 0.05, 0, ckpts)
        with DefaultScope.overwrite_default_scope('mmdet'):
            torch.manual_seed(0)
            model = DET_MODELS.build(cfg.model)
            model.init_weights()
            model.eval()
            with torch.no_grad():
                x = model.data_preprocessor(dict(inputs=images),
                                            False)['inputs']
                maps = model.backbone(x)
                levels = model.neck(maps)
            local = self_share(model.backbone, x[:16])
        bb = feature_stats(maps[-1])
        ranks = ' / '.join(f"{feature_stats(f)['eff_rank']:.1f}"
                           for f in levels)
        rows.append(f"| {start} | {bb['rms']:.2f} | {bb['eff_rank']:.1f} | "
                    f"{bb['top1']:.2f} | {bb['top5']:.2f} | "
                    f"{bb['position']:.2f} | {local:.2f} | {ranks} |")
    print('\n'.join(rows))


def report(args):
    """Mean +- sample std (n runs) per task, fraction and start, and the
    mean learning curves of the runs that recorded one."""
    results = _load_table(args)
    metrics = dict(detect=('bbox_mAP', 'segm_mAP'), segment=('mIoU', ))
    starts = [s for s in STARTS if any(r['start'] == s
                                       for r in results.values())]
    lines = []
    for task, names in metrics.items():
        for name in names:
            lines.append(f'\n{task} {name}\n')
            lines.append('| labelled | ' + ' | '.join(starts) + ' |')
            lines.append('|---' * (len(starts) + 1) + '|')
            fractions = sorted({r['fraction'] for r in results.values()
                                if r['task'] == task})
            for fraction in fractions:
                cells = []
                for start in starts:
                    vals = [r[name] for r in results.values()
                            if r['task'] == task and r['start'] == start
                            and r['fraction'] == fraction and name in r]
                    if not vals:
                        cells.append('')
                    elif len(vals) == 1:
                        cells.append(f'{vals[0]:.3g} (1)')
                    else:
                        cells.append(f'{statistics.mean(vals):.3g} +- '
                                     f'{statistics.stdev(vals):.2g} '
                                     f'({len(vals)})')
                lines.append(f'| {fraction:.0%} | ' + ' | '.join(cells) +
                             ' |')
            lines += _curve_lines(results, task, name, starts)
    print('\n'.join(lines))


def _curve_lines(results, task, name, starts):
    """The learning curves (``table --eval-interval``): mean per iteration."""
    runs = [r for r in results.values()
            if r['task'] == task and r.get('curve')]
    iters = sorted({int(it) for r in runs for it in r['curve']})
    if not iters:
        return []
    lines = [f'\n{task} {name} during training (mean of the runs)\n',
             '| labelled | start | ' +
             ' | '.join(f'iter {it}' for it in iters) + ' |',
             '|---' * (len(iters) + 2) + '|']
    for fraction in sorted({r['fraction'] for r in runs}):
        for start in starts:
            group = [r['curve'] for r in runs
                     if r['start'] == start and r['fraction'] == fraction]
            if not group:
                continue
            cells = []
            for it in iters:
                vals = [c[str(it)][name] for c in group
                        if name in c.get(str(it), {})]
                cells.append(f'{statistics.mean(vals):.3g} ({len(vals)})'
                             if vals else '')
            lines.append(f'| {fraction:.0%} | {start} | ' +
                         ' | '.join(cells) + ' |')
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('step',
                        choices=['pretrain', 'classify', 'detect', 'segment',
                                 'pretrain-canvas', 'table', 'report',
                                 'features'])
    parser.add_argument('--work-dir', default='work_dirs/transfer_demo')
    parser.add_argument('--checkpoint', help="pre-training checkpoint "
                        "('none': train the downstream model from scratch)")
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--train-samples', type=int, default=10000)
    parser.add_argument('--test-samples', type=int, default=2000)
    parser.add_argument('--canvas-train', type=int,
                        help='training canvases (400; table: 1000)')
    parser.add_argument('--canvas-val', type=int,
                        help='validation canvases (100; table: 200)')
    parser.add_argument('--modes', nargs='+', default=['finetune', 'scratch'],
                        choices=['finetune', 'scratch'],
                        help='classify: which runs (same budget each)')
    parser.add_argument('--layer-decay', type=float,
                        help='override the layer decay of a run from a '
                        'checkpoint (runs from scratch use 1.0)')
    parser.add_argument('--trainable-blocks', type=int, default=None,
                        help='classify, finetune mode: partial fine-tuning, '
                        'train only the last K blocks (plus fc_norm and '
                        'head); default: all')
    parser.add_argument('--tag', default='', help='suffix of the result key')
    table_args = parser.add_argument_group('table')
    table_args.add_argument('--tasks', nargs='+',
                            default=['segment', 'detect'],
                            choices=['segment', 'detect'])
    table_args.add_argument('--starts', nargs='+',
                            default=[s for s in STARTS if s not in CONTROLS],
                            choices=list(STARTS))
    table_args.add_argument('--fractions', nargs='+', type=float,
                            default=[0.05, 0.2, 1.0],
                            help='labelled share of the training canvases')
    table_args.add_argument('--seeds', nargs='+', type=int,
                            default=[0, 1, 2])
    table_args.add_argument('--pretrain-iters', type=int, default=400)
    table_args.add_argument('--pretrain-ckpt-interval', type=int,
                            default=100)
    table_args.add_argument(
        '--pretrain-config', nargs='+', action=DictAction, default={},
        metavar='METHOD=CONFIG',
        help='another pre-training config for a method, e.g. '
        'mae=configs/demo/mae_canvas_garments.py (the positive control)')
    table_args.add_argument(
        '--pretrain-options', nargs='+', action=DictAction, default={},
        metavar='METHOD.KEY=VALUE',
        help='config options of a canvas pre-training, e.g. '
        'itpn.model.backbone.reference_init=False (recorded with it; a '
        'work dir keeps one set)')
    table_args.add_argument('--table', default='table',
                            help='results go to <work-dir>/<table>.json')
    table_args.add_argument('--eval-interval', type=int, default=0,
                            help='also evaluate every this many iterations '
                            '(the learning curve goes into the table)')
    table_args.add_argument('--det-iters', type=int, default=200)
    table_args.add_argument('--det-batch-size', type=int, default=4)
    # 1500 x 8 at 1e-3: at 300 iterations (3e-4 or 1e-3) no start gets past
    # predicting background everywhere (docs/transfer.md 5.3)
    table_args.add_argument('--seg-iters', type=int, default=1500)
    table_args.add_argument('--seg-batch-size', type=int, default=8)
    table_args.add_argument('--det-lr', type=float,
                            help="peak lr of every detection run (default: "
                            "the config's, 2e-4)")
    table_args.add_argument('--seg-lr', type=float, default=1e-3,
                            help='peak lr of every segmentation run (the '
                            "configs' is 3e-4)")
    args = parser.parse_args(argv)
    # {'itpn.model.x': v} -> {'itpn': {'model.x': v}}
    options = {}
    for name, value in args.pretrain_options.items():
        method, _, key = name.partition('.')
        if method not in PRETRAIN_CFG or not key:
            parser.error(f'--pretrain-options {name}: expected METHOD.KEY, '
                         f'METHOD one of {sorted(PRETRAIN_CFG)}')
        options.setdefault(method, {})[key] = value
    args.pretrain_options = options
    for method in args.pretrain_config:
        if method not in PRETRAIN_CFG:
            parser.error(f'--pretrain-config {method}: expected one of '
                         f'{sorted(PRETRAIN_CFG)}')
    big = args.step in ('pretrain-canvas', 'table', 'report', 'features')
    if args.canvas_train is None:
        args.canvas_train = 1000 if big else 400
    if args.canvas_val is None:
        args.canvas_val = 200 if big else 100
    os.makedirs(args.work_dir, exist_ok=True)
    dict(pretrain=pretrain, classify=classify, detect=detect,
         segment=segment, table=table, report=report, features=features,
         **{'pretrain-canvas': pretrain_canvas})[args.step](args)


if __name__ == '__main__':
    main()
