"""The transfer path of the canvas demos, checked end to end.

For each pre-training config that feeds the canvas Mask R-CNN / UperNet
configs (the Fashion-MNIST MAE demo, the canvas MAE and iTPN pre-trainings),
at the configs' own sizes:

- the downstream data preprocessor turns an image into the same tensor as
  the pre-training's (mean, std, channel order: checked on a colour image);
- which tensors load (backbone, and the iTPN pyramid unless it is kept
  fresh);
- at the first step the downstream backbone (and pyramid) computes exactly
  the pre-trained encoder's (and pyramid's) features on that input, with
  the position table resized the way the pre-trained encoder resizes it;
- the optimiser that ``tools/transfer_demo.py table`` builds gives every
  parameter the lr and weight decay the config intends (layer decay ids,
  no-decay names, the from-scratch variant without layer decay, the iTPN
  pyramid at the heads' lr), also after the warm-up's first step.
"""
import copy
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope, init_default_scope

from mmpretrain.registry import MODELS
from mmmim.models.utils.itpn_layers import tokens_to_nchw

from .conftest import requires_fashion_mnist

BENCH = 'configs/benchmarks'
MAE_DET = f'{BENCH}/mask_rcnn/canvas_mae-vit-demo_simple-fpn_mask-rcnn.py'
MAE_SEG = f'{BENCH}/upernet/canvas_mae-vit-demo_upernet.py'
MAE_CDET = f'{BENCH}/mask_rcnn/canvas_mae-vit-canvas_simple-fpn_mask-rcnn.py'
MAE_CSEG = f'{BENCH}/upernet/canvas_mae-vit-canvas_upernet.py'
ITPN_DET = f'{BENCH}/mask_rcnn/canvas_itpn-hivit-canvas_pyramid_mask-rcnn.py'
ITPN_SEG = f'{BENCH}/upernet/canvas_itpn-hivit-canvas_upernet.py'


def _transfer_demo():
    spec = importlib.util.spec_from_file_location('transfer_demo',
                                                  'tools/transfer_demo.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _registry(scope):
    return __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS


def _scope(cfg_file):
    return 'mmdet' if '/mask_rcnn/' in cfg_file else 'mmseg'


def _pretrainer(cfg_file):
    """The pre-training model as the Runner builds it, weights perturbed."""
    cfg = Config.fromfile(cfg_file)
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    model.init_weights()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
    """{name: (pre-training model, checkpoint path)}."""
    out = {}
    root = tmp_path_factory.mktemp('pretrained')
    for name, cfg_file in (('mae_fmnist', 'configs/demo/mae_fashion-mnist.py'),
                           ('mae_canvas', 'configs/demo/mae_canvas.py'),
                           ('itpn_canvas', 'configs/demo/itpn_canvas.py'),
                           ('itpn_fmnist',
                            'configs/demo/itpn_fashion-mnist.py')):
        torch.manual_seed(len(out))
        model = _pretrainer(cfg_file)
        path = str(root / f'{name}.pth')
        torch.save(dict(meta=dict(), state_dict=model.state_dict()), path)
        out[name] = (model, path)
    return out


def _downstream(cfg_file, ckpt, neck_ckpt=None):
    cfg = Config.fromfile(cfg_file)
    cfg.model.backbone.init_cfg.checkpoint = ckpt
    if cfg.model.neck.get('init_cfg') is not None:
        if neck_ckpt is None:
            cfg.model.neck.init_cfg = None
        else:
            cfg.model.neck.init_cfg.checkpoint = neck_ckpt
    scope = _scope(cfg_file)
    with DefaultScope.overwrite_default_scope(scope):
        model = _registry(scope).build(cfg.model)
        model.init_weights()
    return model


def _colour_image(size=64):
    """An HWC uint8 BGR image as mmcv's LoadImageFromFile returns it, with
    different channels (a channel-order mismatch changes the input)."""
    g = np.random.default_rng(0)
    img = g.integers(0, 256, (size, size, 3), dtype=np.uint8)
    img[..., 0] //= 4  # blue darker than red
    return img


def _pre_inputs(pre, img):
    data = dict(inputs=[torch.from_numpy(img).permute(2, 0, 1)],
                data_samples=[None])
    return pre.data_preprocessor(data)['inputs'][0]


def _down_inputs(model, img):
    scope = 'mmdet' if hasattr(model, 'roi_head') else 'mmseg'
    if scope == 'mmdet':
        from mmdet.structures import DetDataSample as Sample
    else:
        from mmseg.structures import SegDataSample as Sample
    sample = Sample(metainfo=dict(img_shape=img.shape[:2],
                                  ori_shape=img.shape[:2],
                                  pad_shape=img.shape[:2]))
    data = dict(inputs=[torch.from_numpy(img).permute(2, 0, 1)],
                data_samples=[sample])
    # training=True would only add batch augments (the canvas configs have
    # none) and pad the ground truth, which this image has not
    assert not getattr(model.data_preprocessor, 'batch_augments', None)
    with DefaultScope.overwrite_default_scope(scope):
        return model.data_preprocessor(data, training=False)['inputs']


def _vit_block_maps(vit, x):
    """Every block's output of a MaskedViT (no mask) as NCHW maps."""
    outs = []
    hooks = [layer.register_forward_hook(lambda m, i, o: outs.append(o))
             for layer in vit.layers]
    with torch.no_grad():
        vit(x)
    for h in hooks:
        h.remove()
    patch = vit.patch_embed.projection.stride
    h, w = x.shape[-2] // patch[0], x.shape[-1] // patch[1]
    return [o[:, 1:].transpose(1, 2).reshape(o.shape[0], -1, h, w)
            for o in outs]


def _same_input(model, pre, img):
    """The downstream input of ``img``; asserts it is the pre-training's."""
    down = _down_inputs(model, img)
    assert down.shape == (1, 3, 64, 64)  # no resize, no padding at 64 px
    torch.testing.assert_close(down[0], _pre_inputs(pre, img))
    # the check sees channel order: swapping it changes the input
    swapped = _pre_inputs(pre, np.ascontiguousarray(img[..., ::-1]))
    assert not torch.allclose(down[0], swapped)
    return down


def test_canvas_configs_read_images_as_the_canvas_pretraining():
    load = Config.fromfile(
        'configs/demo/mae_canvas.py').train_dataloader.dataset.pipeline[0]
    assert load == dict(type='LoadImageFromFile')  # BGR uint8, as cv2 reads
    for cfg_file in (MAE_CDET, ITPN_SEG):
        down = Config.fromfile(cfg_file).train_dataloader.dataset.pipeline[0]
        assert {k: v for k, v in down.items() if v is not None} == load


# ------------------------------------------------ loads + first-step features
@pytest.mark.parametrize('pre_name,cfg_file', [('mae_fmnist', MAE_DET),
                                               ('mae_canvas', MAE_CSEG)])
def test_vit_features_at_first_step_equal_the_pretrained_encoder(
        pretrained, pre_name, cfg_file):
    pre, path = pretrained[pre_name]
    model = _downstream(cfg_file, path)
    report = model.backbone.pretrained_load_report
    ckpt = {k[len('backbone.'):]: v for k, v in pre.state_dict().items()
            if k.startswith('backbone.')}
    # everything but the pre-training's final norm (unused downstream)
    assert report.missing == [] and report.mismatched == []
    assert sorted(report.unexpected) == ['ln1.bias', 'ln1.weight']
    assert set(report.loaded) == set(ckpt) - {'ln1.bias', 'ln1.weight'}
    resized = pre_name == 'mae_fmnist'  # 32 px pre-training, 8 x 8 table
    assert report.adapted == (['pos_embed: (1, 65, 128) -> (1, 257, 128)']
                              if resized else [])
    img = _colour_image()
    x = _same_input(model, pre, img)
    model.train()  # as at the first step
    with torch.no_grad():
        feats = model.backbone(x)
    # the pre-trained encoder on the same input; at 64 px the 32 px demo
    # resizes its own table on the fly, exactly as the loader did
    ref = _vit_block_maps(pre.backbone, _pre_inputs(pre, img)[None])
    out_indices = model.backbone.out_indices
    assert len(feats) == len(out_indices)
    for f, i in zip(feats, out_indices):
        torch.testing.assert_close(f, ref[i], atol=1e-5, rtol=1e-5)


def test_permuted_control_keeps_every_tensors_values_not_its_order(
        pretrained, tmp_path):
    """``mae-permuted``: the MAE checkpoint's tensors shuffled entry by
    entry (same values, so the same scale; other order), loaded in full
    into the detector like the checkpoint itself, with MAE's layer decay."""
    tool = _transfer_demo()
    _, src = pretrained['mae_canvas']
    ckpt = str(tmp_path / 'iter_400.pth')
    torch.save(torch.load(src), ckpt)
    out = tool.permuted_checkpoint(ckpt)
    assert out == str(tmp_path / 'iter_400_permuted.pth')
    orig, perm = torch.load(ckpt)['state_dict'], torch.load(out)['state_dict']
    assert torch.load(out)['meta'] == dict(permuted_from=ckpt, seed=0)
    assert list(perm) == list(orig)
    for k, v in orig.items():
        assert perm[k].shape == v.shape and perm[k].dtype == v.dtype
        torch.testing.assert_close(perm[k].flatten().sort().values,
                                   v.flatten().sort().values, rtol=0, atol=0)
        if v.numel() > 1 and v.is_floating_point():
            assert not torch.equal(perm[k], v), k
    # written once: a second call reuses the file, another seed differs
    mtime = osp.getmtime(out)
    assert tool.permuted_checkpoint(ckpt) == out
    assert osp.getmtime(out) == mtime
    torch.save(torch.load(src), str(tmp_path / 'other.pth'))
    again = torch.load(tool.permuted_checkpoint(str(tmp_path / 'other.pth'),
                                                seed=1))['state_dict']
    assert not torch.equal(again['backbone.pos_embed'],
                           perm['backbone.pos_embed'])
    # the start: the permuted file, MAE's layer decay, every tensor loaded
    _, targs = _table_tool(tmp_path)
    _, cfg, info = tool._finetune_cfg(targs, 'detect', 'mae-permuted', 0.05,
                                      0, {'mae-permuted': out})
    assert info['backbone'] == out and info['layer_decay'] == 0.75
    assert cfg.model.backbone.init_cfg.checkpoint == out
    model = _downstream(MAE_CDET, out)
    report = model.backbone.pretrained_load_report
    assert report.missing == [] and report.mismatched == []
    loaded = model.backbone.state_dict()
    for k in report.loaded:
        torch.testing.assert_close(loaded[k], perm['backbone.' + k])
    # a control: run when asked for, not part of the default table
    seen = {}
    tool.table = lambda args: seen.update(starts=args.starts)
    tool.main(['table', '--work-dir', str(tmp_path)])
    assert seen['starts'] == ['scratch-vit', 'mae', 'scratch-hivit',
                              'itpn-fresh', 'itpn-integral']
    tool.main(['table', '--work-dir', str(tmp_path), '--starts',
               'mae-permuted'])
    assert seen['starts'] == ['mae-permuted']


def test_permuted_pyramid_control_loads_the_pyramid_from_the_shuffled_copy(
        tmp_path):
    """``itpn-permuted-pyramid``: the pre-trained HiViT, the pyramid from
    the shuffled checkpoint (``table`` asks for the neck's source too)."""
    tool = _transfer_demo()
    tool._canvas = lambda args: str(tmp_path / 'canvas')
    asked, runs = [], []
    tool.pretrained_checkpoint = lambda args, src: asked.append(src) or \
        f'{src}.pth'
    tool._finetune = lambda cfg, info, task, interval: runs.append(
        (cfg, info))
    tool.main(['table', '--work-dir', str(tmp_path), '--starts',
               'itpn-permuted-pyramid', '--tasks', 'detect', '--fractions',
               '0.05', '--seeds', '0'])
    assert sorted(asked) == ['itpn', 'itpn-permuted']
    (cfg, info), = runs
    assert (info['backbone'], info['neck']) == ('itpn.pth',
                                                'itpn-permuted.pth')
    assert cfg.model.backbone.init_cfg.checkpoint == 'itpn.pth'
    assert cfg.model.neck.init_cfg.checkpoint == 'itpn-permuted.pth'
    assert info['layer_decay'] == 0.9


def _itpn_ref(pre, x):
    """Pre-trained backbone maps (strides 2, 4, 8) and pyramid levels."""
    bb, neck = pre.backbone, pre.neck
    hw = (x.shape[-2] // bb.patch_size, x.shape[-1] // bb.patch_size)
    with torch.no_grad():
        f4, f8, f16 = bb.forward_tokens(x)
        l16, l8, l4 = neck.forward_tokens((f4, f8, f16))
    maps = [tokens_to_nchw(f, hw) for f in (f4, f8, f16)]
    levels = [tokens_to_nchw(t, hw) for t in (l4, l8, l16)]
    return maps, levels


@pytest.mark.parametrize('cfg_file,pyramid', [(ITPN_DET, 'integral'),
                                              (ITPN_DET, 'fresh'),
                                              (ITPN_SEG, 'integral')])
def test_itpn_features_at_first_step_equal_the_pretrained_model(
        pretrained, cfg_file, pyramid):
    pre, path = pretrained['itpn_canvas']
    integral = pyramid == 'integral'
    model = _downstream(cfg_file, path, path if integral else None)
    sd = pre.state_dict()
    bb = model.backbone.pretrained_load_report
    assert bb.missing == bb.unexpected == bb.mismatched == bb.adapted == []
    assert set(bb.loaded) == {k[9:] for k in sd if k.startswith('backbone.')}
    if integral:
        nk = model.neck.pretrained_load_report
        assert nk.missing == nk.unexpected == nk.mismatched == []
        assert set(nk.loaded) == {k[5:] for k in sd if k.startswith('neck.')}
    else:
        assert not hasattr(model.neck, 'pretrained_load_report')
    img = _colour_image()
    x = _same_input(model, pre, img)
    model.train()
    with torch.no_grad():
        maps = model.backbone(x)
        outs = model.neck(maps)
    ref_maps, ref_levels = _itpn_ref(pre, _pre_inputs(pre, img)[None])
    for m, r in zip(maps, ref_maps):
        torch.testing.assert_close(m, r, atol=1e-5, rtol=1e-5)
    fpn_dim = model.neck.fpn_dim
    levels = ([o[:, :fpn_dim] for o in outs[:3]]
              if model.neck.out_mode == 'uper' else outs[:3])
    same = [torch.allclose(o, r, atol=1e-5, rtol=1e-5)
            for o, r in zip(levels, ref_levels)]
    assert same == [integral] * 3
    if model.neck.out_mode == 'uper':  # the backbone maps ride along
        for o, m in zip(outs[:3], maps):
            torch.testing.assert_close(o[:, fpn_dim:], m)


def test_itpn_fmnist_demo_into_canvas_configs_resizes_like_itself(
        pretrained):
    # the 32 px iTPN demo (4 x 4 grid) into the 64 px canvas Mask R-CNN: the
    # loaded table is the exact-size bicubic resize the pre-trained encoder
    # uses at 64 px without the reference's resampling quirk (which shifts
    # the table by up to 0.1 cell at any other grid; docs/itpn.md)
    pre, path = pretrained['itpn_fmnist']
    model = _downstream(ITPN_DET, path, path)
    assert model.backbone.pretrained_load_report.adapted == [
        'pos_embed: (1, 16, 128) -> (1, 64, 128)']
    img = _colour_image()
    x = _same_input(model, pre, img)
    model.train()
    with torch.no_grad():
        maps = model.backbone(x)
    pre.backbone.reference_pos_interp = False
    try:
        ref_maps, _ = _itpn_ref(pre, _pre_inputs(pre, img)[None])
    finally:
        pre.backbone.reference_pos_interp = True
    for m, r in zip(maps, ref_maps):
        torch.testing.assert_close(m, r, atol=1e-5, rtol=1e-5)


# -------------------------------------------------- per-parameter lr / wd
def _expected_layer_id(name, family):
    """Layer id by name, written out for the two demo backbones."""
    if not name.startswith('backbone.'):
        return None  # neck / heads: the top
    name = name[len('backbone.'):]
    if name.startswith(('patch_embed', 'pos_embed', 'cls_token')):
        return 0
    if family == 'vit' and name.startswith('layers.'):
        return int(name.split('.')[1]) + 1
    if family == 'hivit' and name.startswith('blocks.'):
        # blocks: MLP block, merge, MLP block, merge, 4 attention blocks
        return [1, 1, 2, 2, 3, 4, 5, 6][int(name.split('.')[1])]
    return None


NO_DECAY = ('pos_embed', 'cls_token', 'mask_token',
            'relative_position_bias_table')


def _table_tool(tmp_path, **options):
    """transfer_demo.py and the ``table`` arguments of a tiny run (no canvas
    data needed: only configs are built)."""
    tool = _transfer_demo()
    args = dict(work_dir=str(tmp_path), canvas_train=20, canvas_val=2,
                det_batch_size=2, seg_batch_size=2, det_iters=24,
                seg_iters=24, det_lr=None, seg_lr=None, layer_decay=None)
    args.update(options)
    tool._canvas = lambda args: str(tmp_path / 'canvas')
    return tool, type('Args', (), args)()


def test_table_layer_decay_override_only_for_pretrained_starts(tmp_path):
    """``table --layer-decay`` replaces the config's rate of the pre-trained
    starts; scratch starts keep 1.0."""
    tool, args = _table_tool(tmp_path, layer_decay=0.5)
    ckpts = dict(mae='mae.pth', itpn='itpn.pth')
    for start, rate in [('mae', 0.5), ('itpn-integral', 0.5),
                        ('scratch-vit', 1.0), ('scratch-hivit', 1.0)]:
        _, cfg, info = tool._finetune_cfg(args, 'detect', start, 0.2, 0,
                                          ckpts)
        assert info['layer_decay'] == rate
        assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == rate


@pytest.mark.parametrize('task,start', [('detect', 'scratch-vit'),
                                        ('detect', 'itpn-integral'),
                                        ('segment', 'mae'),
                                        ('segment', 'scratch-hivit')])
def test_table_optimiser_lr_and_decay_per_parameter(task, start, tmp_path):
    tool, args = _table_tool(tmp_path, seg_lr=5e-4)
    ckpts = dict(mae='mae.pth', itpn='itpn.pth')
    _, cfg, info = tool._finetune_cfg(args, task, start, 0.2, 0, ckpts)
    family = tool.STARTS[start][0]
    depth = 4 if family == 'vit' else 6
    pretrained = not start.startswith('scratch')
    d = (0.75 if family == 'vit' else 0.90) if pretrained else 1.0
    assert info['layer_decay'] == d
    # --seg-lr sets every segmentation run's peak lr; detection keeps 2e-4
    assert info['lr'] == (5e-4 if task == 'segment' else 2e-4)
    scope = 'mmdet' if task == 'detect' else 'mmseg'
    with DefaultScope.overwrite_default_scope(scope):
        model = _registry(scope).build(cfg.model)  # no init: no checkpoint
        ow = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
        from mmengine.registry import PARAM_SCHEDULERS
        groups = ow.optimizer.param_groups
        base_lr, base_wd = cfg.optim_wrapper.optimizer.lr, \
            cfg.optim_wrapper.optimizer.weight_decay
        seen = {}
        for g in groups:
            for n in g['param_names']:
                assert n not in seen, f'{n} in two groups'
                seen[n] = (g['lr'], g['weight_decay'])
        trainable = {n: p for n, p in model.named_parameters()
                     if p.requires_grad}
        assert set(seen) == set(trainable)
        # the position table is tuned downstream (pre-training kept it fixed)
        assert 'backbone.pos_embed' in trainable
        expected = {}
        for n, p in trainable.items():
            layer_id = _expected_layer_id(n, family)
            layer_id = depth + 1 if layer_id is None else layer_id
            lr = base_lr * d**(depth + 1 - layer_id)
            last = n.rsplit('.', 1)[-1]
            wd = 0. if (p.ndim == 1 or last == 'bias'
                        or last in NO_DECAY) else base_wd
            expected[n] = (lr, wd)
            assert seen[n] == pytest.approx((lr, wd)), n
        if family == 'hivit':  # the pyramid trains at the heads' lr
            assert seen['neck.fpn_modules.0.mlp.fc1.weight'] == \
                pytest.approx((base_lr, base_wd))
        # the warm-up's first step scales every group alike
        for s in cfg.param_scheduler:
            PARAM_SCHEDULERS.build(dict(s, optimizer=ow.optimizer))
        start_factor = cfg.param_scheduler[0].start_factor
        for g in groups:
            lr0, _ = expected[g['param_names'][0]]
            assert g['lr'] == pytest.approx(lr0 * start_factor)


# --------------------------------------------------------- label subsets
@requires_fashion_mnist
def test_label_subset_is_the_same_canvases_in_both_tasks(tmp_path):
    tool = _transfer_demo()
    from mmmim.datasets.canvas import make_canvas_sets
    root = make_canvas_sets(str(tmp_path), num_train=12, num_val=2)
    idx = tool.label_subset(12, 0.25, seed=3)
    assert len(idx) == 3 and idx == sorted(set(idx))
    assert idx != tool.label_subset(12, 0.25, seed=4)
    assert tool.label_subset(12, 1.0, seed=3) == list(range(12))
    assert len(tool.label_subset(12, 0.01, seed=0)) == 1
    det = Config.fromfile(MAE_DET).train_dataloader.dataset
    det.update(data_root=root['coco_root'] + '/', indices=idx)
    seg = Config.fromfile(MAE_SEG).train_dataloader.dataset
    seg.update(data_root=root['ade_root'], indices=idx)
    names = []
    for ds_cfg, scope in ((det, 'mmdet'), (seg, 'mmseg')):
        with DefaultScope.overwrite_default_scope(scope):
            ds = __import__(f'{scope}.registry',
                            fromlist=['DATASETS']).DATASETS.build(ds_cfg)
            names.append([osp.basename(ds.get_data_info(i)['img_path'])
                          for i in range(len(ds))])
    assert names[0] == names[1] == [f'{i:06d}.png' for i in idx]


# ---------------------------------------------------------------- report
def test_report_means_spreads_and_curves(tmp_path, capsys):
    tool = _transfer_demo()

    def run(start, seed, miou, curve=None):
        r = dict(task='segment', start=start, fraction=0.05, seed=seed,
                 mIoU=miou)
        if curve:
            r['curve'] = {it: dict(mIoU=v) for it, v in curve.items()}
        return r

    table = {'a': run('mae', 0, 10.0, {100: 5.0, 300: 10.0}),
             'b': run('mae', 1, 14.0, {100: 7.0, 300: 14.0}),
             'c': run('scratch-vit', 0, 9.5)}
    with open(tmp_path / 'table.json', 'w') as f:
        json.dump(table, f)  # curve iterations become strings, as on disk
    tool.main(['report', '--work-dir', str(tmp_path)])
    out = capsys.readouterr().out
    # columns in the STARTS order; mean +- sample std (n)
    assert '| labelled | scratch-vit | mae |' in out
    assert '| 5% | 9.5 (1) | 12 +- 2.8 (2) |' in out
    assert '| labelled | start | iter 100 | iter 300 |' in out
    assert '| 5% | mae | 6 (2) | 12 (2) |' in out
    assert 'scratch-vit | ' not in out.split('during training')[1]


# ------------------------------------------------- pre-training options
def test_pretrain_options_reach_the_pretraining_and_are_checked(tmp_path):
    """``--pretrain-options METHOD.KEY=VALUE`` parses values as mmengine's
    ``--cfg-options`` does, groups them per method, and a work dir whose
    pre-training was recorded with other options refuses to reuse it."""
    tool = _transfer_demo()
    seen = {}
    tool.pretrain_canvas = lambda args: seen.update(args.pretrain_options)
    tool.main(['pretrain-canvas', '--work-dir', str(tmp_path),
               '--pretrain-options',
               'itpn.model.backbone.reference_init=False',
               'itpn.model.mask_ratio=0.6', 'mae.model.head.norm_pix=True'])
    assert seen == {'itpn': {'model.backbone.reference_init': False,
                             'model.mask_ratio': 0.6},
                    'mae': {'model.head.norm_pix': True}}
    with pytest.raises(SystemExit):
        tool.main(['pretrain-canvas', '--work-dir', str(tmp_path),
                   '--pretrain-options', 'simmim.model.x=1'])

    # a finished pre-training, recorded with one option
    ckpt = tmp_path / 'pretrain_itpn' / 'iter_400.pth'
    ckpt.parent.mkdir()
    ckpt.write_bytes(b'')
    with open(tmp_path / 'results.json', 'w') as f:
        json.dump({'pretrain_itpn': dict(
            iters=400, checkpoint=str(ckpt), config=tool.PRETRAIN_CFG['itpn'],
            options={'model.backbone.reference_init': False})}, f)

    def args(options, config={}):
        return type('Args', (), dict(work_dir=str(tmp_path),
                                     pretrain_iters=400,
                                     pretrain_config=config,
                                     pretrain_options=options))()

    same = {'itpn': {'model.backbone.reference_init': False}}
    assert tool.canvas_pretrain(args(same), 'itpn') == str(ckpt)
    # a tuple option reads back from JSON as a list: still the same
    with open(tmp_path / 'results.json', 'w') as f:
        json.dump({'pretrain_itpn': dict(
            iters=400, checkpoint=str(ckpt), config=tool.PRETRAIN_CFG['itpn'],
            options={'model.backbone.reference_init': False,
                     'model.backbone.out_indices': (1, 2)})}, f)
    tupled = {'itpn': {'model.backbone.reference_init': False,
                       'model.backbone.out_indices': (1, 2)}}
    assert tool.canvas_pretrain(args(tupled), 'itpn') == str(ckpt)
    for other in (args({}),
                  args({'itpn': {'model.backbone.reference_init': True}}),
                  args(same, {'itpn': 'configs/demo/other.py'})):
        with pytest.raises(ValueError, match='was pre-trained with'):
            tool.canvas_pretrain(other, 'itpn')


def test_pretrain_config_replaces_the_canvas_pretraining(tmp_path):
    """``--pretrain-config mae=...`` (the positive control) is the config
    the pre-training builds; the garments config keeps the canvas encoder
    and reads Fashion-MNIST at 64 px, which the tool leaves alone."""
    tool = _transfer_demo()
    seen = {}
    tool.pretrain_canvas = lambda args: seen.update(args.pretrain_config)
    garments = 'configs/demo/mae_canvas_garments.py'
    tool.main(['pretrain-canvas', '--work-dir', str(tmp_path),
               '--pretrain-config', f'mae={garments}'])
    assert seen == {'mae': garments}
    with pytest.raises(SystemExit):
        tool.main(['pretrain-canvas', '--work-dir', str(tmp_path),
                   '--pretrain-config', f'simmim={garments}'])
    cfg, canvas = (Config.fromfile(c) for c in
                   (garments, tool.PRETRAIN_CFG['mae']))
    assert cfg.model == canvas.model
    ds = cfg.train_dataloader.dataset
    assert (ds.type, ds.split, ds.img_size) == ('FashionMNISTIDX', 'train',
                                                64)
    assert 'data_root' not in ds
    assert [t.type for t in ds.pipeline] == [
        t.type for t in canvas.train_dataloader.dataset.pipeline[1:]]


def test_feature_stats_rank_shares_and_position():
    """``transfer_demo.feature_stats`` on maps whose answer is known."""
    stats = _transfer_demo().feature_stats
    g = torch.Generator().manual_seed(0)
    n, c, h, w = 8, 16, 4, 4
    # one direction: every token a multiple of the same vector
    v = torch.randn(c, generator=g)
    one = torch.randn(n, 1, h, w, generator=g) * v[None, :, None, None]
    s = stats(one)
    assert s['eff_rank'] == pytest.approx(1.0)
    assert s['top1'] == pytest.approx(1.0) and s['top5'] == pytest.approx(1.)
    assert s['rms'] == pytest.approx(float(one.pow(2).mean().sqrt()))
    # two orthogonal directions, variances 3 : 1 -> (3 + 1)^2 / (9 + 1)
    e = torch.eye(c)
    a, b = (torch.randn(4000, generator=g) for _ in range(2))
    a, b = (a - a.mean()) / a.std(unbiased=False), \
        (b - b.mean()) / b.std(unbiased=False)
    b = b - (a @ b) / (a @ a) * a  # uncorrelated with a, as sampled
    b = b / b.std(unbiased=False)
    tokens = 3**0.5 * a[:, None] * e[0] + b[:, None] * e[1]
    two = tokens.reshape(250, 4, 4, c).permute(0, 3, 1, 2)
    s = stats(two)
    assert s['eff_rank'] == pytest.approx(1.6, rel=1e-6)
    assert s['top1'] == pytest.approx(0.75, rel=1e-6)
    # the same map for every image: all of it is position; a map constant
    # over positions but different per image: none of it
    per_pos = torch.randn(1, c, h, w, generator=g).expand(n, c, h, w)
    assert stats(per_pos)['position'] == pytest.approx(1.0)
    per_img = torch.randn(n, c, 1, 1, generator=g).expand(n, c, h, w)
    assert stats(per_img)['position'] == pytest.approx(0.0, abs=1e-12)
    iso = torch.randn(64, c, 8, 8, generator=g)
    assert c * 0.9 < stats(iso)['eff_rank'] <= c


def test_self_share_of_a_local_and_of_a_global_backbone():
    """``self_share``: 1 for a backbone whose tokens see only their own
    pixels, 1 / tokens for one whose tokens all see the whole image."""
    self_share = _transfer_demo().self_share
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))

    def local(img):  # 8 x 8 cells -> a 4 x 4 map
        return [torch.nn.functional.avg_pool2d(img.pow(2), 8)]

    def mixing(img):  # every token the image's mean square
        m = img.pow(2).mean(dim=(2, 3), keepdim=True)
        return [m.expand(-1, -1, 4, 4)]

    assert self_share(local, x) == pytest.approx(1.0)
    assert self_share(mixing, x) == pytest.approx(1 / 16)
    half = lambda img: [local(img)[0] + 0.25 * mixing(img)[0]]  # noqa: E731
    assert 1 / 16 < self_share(half, x) < 1.0
