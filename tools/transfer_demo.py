"""Small, real transfer runs on CPU (numbers quoted in docs/transfer.md).

    # 1. the demo MAE pre-training (configs/demo/mae_fashion-mnist.py)
    bash tools/run_demo.sh mae      # -> work_dirs/demo_mae/iter_800.pth
    #    (or a shorter one: python tools/transfer_demo.py pretrain --iters 400)
    # 2. Fashion-MNIST classification: fine-tune from it vs from scratch,
    #    same iterations, same data, same recipe (scratch without layer decay)
    python tools/transfer_demo.py classify --checkpoint work_dirs/demo_mae/iter_800.pth
    #    partial fine-tuning: only the last K blocks (+ fc_norm, head) train
    python tools/transfer_demo.py classify --checkpoint ... --modes finetune \
        --trainable-blocks 1 --tag _last1
    # 3. Mask R-CNN / UperNet on the canvas sets, from the same checkpoint,
    #    and from scratch (--checkpoint none, no layer decay) for comparison
    python tools/transfer_demo.py detect --checkpoint ... --iters 300
    python tools/transfer_demo.py detect --checkpoint none --iters 300 --tag _scratch
    python tools/transfer_demo.py segment --checkpoint ... --iters 300

Each step appends its metrics to ``<work-dir>/results.json``.
"""
import argparse
import json
import os
import os.path as osp
import time

from mmengine.config import Config
from mmengine.runner import Runner

CLS_CFG = 'configs/benchmarks/classification/demo_mae-vit_ft_fashion-mnist.py'
DET_CFG = ('configs/benchmarks/mask_rcnn/'
           'canvas_mae-vit-demo_simple-fpn_mask-rcnn.py')
SEG_CFG = 'configs/benchmarks/upernet/canvas_mae-vit-demo_upernet.py'


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
    root = osp.join(args.work_dir, 'canvas')
    if not osp.isdir(osp.join(root, 'coco')):
        from mmmim.datasets.canvas import make_canvas_sets
        make_canvas_sets(root, args.canvas_train, args.canvas_val)
    return root


def detect(args):
    root = _canvas(args)
    cfg = Config.fromfile(DET_CFG)
    cfg.work_dir = osp.join(args.work_dir, 'mask_rcnn')
    _iter_schedule(cfg, args.iters, warmup=max(args.iters // 12, 1))
    data_root = osp.join(root, 'coco') + '/'
    for dl in (cfg.train_dataloader, cfg.val_dataloader):
        dl.dataset.data_root = data_root
    cfg.val_evaluator.ann_file = data_root + 'annotations/instances_val.json'
    _test_only(cfg)
    _init_backbone(cfg, args)
    t0 = time.time()
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    _record(args.work_dir, 'detect' + args.tag,
            dict({k: round(float(v), 3) for k, v in metrics.items()
                  if k.endswith(('_mAP', '_mAP_50'))},
                 iters=args.iters, checkpoint=args.checkpoint,
                 layer_decay=cfg.optim_wrapper.paramwise_cfg.layer_decay_rate,
                 minutes=round((time.time() - t0) / 60, 1)))


def segment(args):
    root = _canvas(args)
    cfg = Config.fromfile(SEG_CFG)
    cfg.work_dir = osp.join(args.work_dir, 'upernet')
    _iter_schedule(cfg, args.iters, warmup=max(args.iters // 12, 1),
                   last='poly')
    for dl in (cfg.train_dataloader, cfg.val_dataloader):
        dl.dataset.data_root = osp.join(root, 'ade')
    _test_only(cfg)
    _init_backbone(cfg, args)
    t0 = time.time()
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    _record(args.work_dir, 'segment' + args.tag,
            dict({k: round(float(v), 2) for k, v in metrics.items()},
                 iters=args.iters, checkpoint=args.checkpoint,
                 layer_decay=cfg.optim_wrapper.paramwise_cfg.layer_decay_rate,
                 minutes=round((time.time() - t0) / 60, 1)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('step',
                        choices=['pretrain', 'classify', 'detect', 'segment'])
    parser.add_argument('--work-dir', default='work_dirs/transfer_demo')
    parser.add_argument('--checkpoint', help="pre-training checkpoint "
                        "('none': train the downstream model from scratch)")
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--train-samples', type=int, default=10000)
    parser.add_argument('--test-samples', type=int, default=2000)
    parser.add_argument('--canvas-train', type=int, default=400)
    parser.add_argument('--canvas-val', type=int, default=100)
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
    args = parser.parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    dict(pretrain=pretrain, classify=classify, detect=detect,
         segment=segment)[args.step](args)


if __name__ == '__main__':
    main()
