"""Loading mmmim pre-training checkpoints into downstream models.

A tiny MAE pre-training checkpoint (mmengine layout: ``state_dict`` with
``backbone.*``, ``neck.*``, ``head.*``) is loaded through the downstream
configs' ``init_cfg=dict(type='Pretrained', prefix='backbone.')``; every
backbone key must arrive (with the checkpoint's values), pos embeds must be
interpolated, every missing / unexpected key must be reported, and a module
that loads nothing must raise.
"""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope

from mmpretrain.registry import MODELS

from mmmim.models.utils.checkpoint_loading import (adapt_state_dict,
                                                   load_pretrained_checked,
                                                   resize_rel_pos_table)

TINY = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)
BENCH = 'configs/benchmarks'


def make_tiny_mae_checkpoint(path):
    """Save a tiny MAE pre-training checkpoint with non-default values."""
    cfg = Config.fromfile('configs/demo/mae_fashion-mnist.py')
    cfg.model.backbone.arch = TINY
    cfg.model.neck.update(embed_dim=32, decoder_embed_dim=32,
                          decoder_depth=1, decoder_num_heads=2)
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    model.init_weights()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    torch.save(dict(meta=dict(), state_dict=model.state_dict()), path)
    return {k[len('backbone.'):]: v for k, v in model.state_dict().items()
            if k.startswith('backbone.')}


@pytest.fixture(scope='module')
def tiny_ckpt(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('ckpt') / 'mae_tiny.pth')
    return path, make_tiny_mae_checkpoint(path)


def _build(cfg_file, ckpt, scope, prefix='backbone.', **backbone):
    cfg = Config.fromfile(f'{BENCH}/{cfg_file}')
    init_default_scope(scope)
    cfg.model.backbone.update(arch=TINY, patch_size=4, **backbone)
    cfg.model.backbone.init_cfg.update(checkpoint=ckpt, prefix=prefix)
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    if scope == 'mmpretrain':
        cfg.model.head.in_channels = 32
        if cfg.model.get('neck') is not None:
            necks = cfg.model.neck if isinstance(cfg.model.neck,
                                                 list) else [cfg.model.neck]
            for n in necks:
                if 'input_features' in n:
                    n.input_features = 32
    elif scope == 'mmdet':
        cfg.model.neck.in_channels = 32
    else:
        bn = dict(type='BN', requires_grad=True)
        cfg.model.neck.update(embed_dim=32, norm_cfg=bn)
        cfg.model.decode_head.update(in_channels=[32] * 4, channels=16,
                                     norm_cfg=bn)
        cfg.model.auxiliary_head.update(in_channels=32, channels=16,
                                        norm_cfg=bn)
    model = registry.build(cfg.model)
    model.init_weights()
    return model


def _assert_values_loaded(backbone, ref, skip=()):
    own = backbone.state_dict()
    for k in backbone.pretrained_load_report.loaded:
        if k in skip:
            continue
        torch.testing.assert_close(own[k], ref[k], msg=k)


CASES = [
    # (config, scope, backbone overrides, missing, unexpected)
    ('classification/mae_vit-base-p16_ft-100e_in1k.py', 'mmpretrain',
     dict(img_size=32), ['ln2.weight', 'ln2.bias'],
     ['ln1.weight', 'ln1.bias']),
    ('classification/hpm_vit-base-p16_ft-100e_in1k.py', 'mmpretrain',
     dict(img_size=32), ['ln2.weight', 'ln2.bias'],
     ['ln1.weight', 'ln1.bias']),
    ('classification/mae_vit-base-p16_linear-90e_in1k.py', 'mmpretrain',
     dict(img_size=32, frozen_stages=2), [], []),
    ('classification/sim_vit-base-p16_linear-90e_in1k.py', 'mmpretrain',
     dict(img_size=32, frozen_stages=2), [], ['ln1.weight', 'ln1.bias']),
    ('mask_rcnn/mae_vit-base-p16_simple-fpn_mask-rcnn_1x_coco.py', 'mmdet',
     dict(img_size=64, out_indices=(1, )), [], ['ln1.weight', 'ln1.bias']),
    # mmseg's MAE UperNet adds layer scale (init 1.0) to every block
    ('upernet/mae_vit-base-p16_upernet_160k_ade20k-512x512.py', 'mmseg',
     dict(img_size=48, out_indices=(0, 1, 1, 1)),
     [f'layers.{i}.{g}.weight' for i in (0, 1)
      for g in ('attn.gamma1', 'ffn.gamma2')],
     ['ln1.weight', 'ln1.bias']),
]


@pytest.mark.parametrize('cfg_file,scope,bb,missing,unexpected', CASES)
def test_downstream_loads_every_backbone_key(tiny_ckpt, cfg_file, scope, bb,
                                             missing, unexpected):
    path, ref = tiny_ckpt
    model = _build(cfg_file, path, scope, **bb)
    report = model.backbone.pretrained_load_report
    assert sorted(report.missing) == sorted(missing)
    assert sorted(report.unexpected) == sorted(unexpected)
    assert report.mismatched == []
    # every checkpoint backbone key the model has is loaded ...
    own = set(model.backbone.state_dict())
    assert set(report.loaded) == set(ref) & own
    assert set(ref) - own == set(unexpected)
    # ... with the checkpoint's values (pos embed: interpolated, below)
    _assert_values_loaded(model.backbone, ref, skip={'pos_embed'})


def test_pos_embed_interpolated_to_downstream_grid(tiny_ckpt):
    path, ref = tiny_ckpt
    model = _build('mask_rcnn/mae_vit-base-p16_simple-fpn_mask-rcnn_1x_coco.py',
                   path, 'mmdet', img_size=64, out_indices=(1, ))
    report = model.backbone.pretrained_load_report
    assert report.adapted == ['pos_embed: (1, 65, 32) -> (1, 257, 32)']
    pos = model.backbone.pos_embed.detach()
    src = ref['pos_embed']
    torch.testing.assert_close(pos[:, :1], src[:, :1])  # cls row kept
    grid = src[:, 1:].reshape(1, 8, 8, 32).permute(0, 3, 1, 2)
    expect = F.interpolate(grid, size=(16, 16), mode='bicubic',
                           align_corners=False)
    torch.testing.assert_close(
        pos[:, 1:], expect.permute(0, 2, 3, 1).reshape(1, 256, 32))
    # pre-training used a fixed table; downstream tunes it
    assert model.backbone.pos_embed.requires_grad


def test_report_lists_every_key_in_the_log(tiny_ckpt, capsys):
    path, _ = tiny_ckpt
    MMLogger.get_instance('test_transfer_report', log_level='INFO')
    _build('classification/mae_vit-base-p16_ft-100e_in1k.py', path,
           'mmpretrain', img_size=32)
    out = capsys.readouterr().out
    assert 'missing keys (2' in out and 'ln2.weight' in out
    assert 'unexpected keys (2' in out and 'ln1.bias' in out
    assert 'MaskedViT' in out and "prefix 'backbone.'" in out


def test_backbone_that_loads_nothing_raises(tiny_ckpt):
    path, _ = tiny_ckpt
    init_default_scope('mmpretrain')
    vit = MODELS.build(
        dict(type='MaskedViT', arch=TINY, img_size=32, patch_size=4,
             init_cfg=dict(type='Pretrained', checkpoint=path,
                           prefix='neck.')))
    # the MAE decoder's final norm `ln1` matches the backbone's: 64 of the
    # backbone's values load, the rest does not
    with pytest.raises(RuntimeError, match='loaded only 64 of'):
        vit.init_weights()
    with pytest.raises(RuntimeError, match='nothing was loaded'):
        load_pretrained_checked(vit, {'encoder.w': torch.zeros(1)})
    vit = MODELS.build(
        dict(type='MaskedViT', arch=TINY, img_size=32, patch_size=4,
             init_cfg=dict(type='Pretrained', checkpoint=path,
                           prefix='encoder.')))
    with pytest.raises(KeyError, match="top-level prefixes are"):
        vit.init_weights()


def test_other_packages_modules_keep_mmengine_behaviour(tiny_ckpt):
    # mmpretrain's own ViT under the same bad prefix: mmengine's lenient
    # loading (warning only) is left alone.
    path, _ = tiny_ckpt
    init_default_scope('mmpretrain')
    vit = MODELS.build(
        dict(type='VisionTransformer', arch=TINY, img_size=32, patch_size=4,
             init_cfg=dict(type='Pretrained', checkpoint=path,
                           prefix='neck.')))
    vit.init_weights()
    assert not hasattr(vit, 'pretrained_load_report')


def test_strict_missing_and_dict_checkpoints(tiny_ckpt):
    path, ref = tiny_ckpt
    init_default_scope('mmpretrain')
    vit = MODELS.build(dict(type='MaskedViT', arch=TINY, img_size=32,
                            patch_size=4, out_type='avg_featmap',
                            final_norm=False))
    with pytest.raises(RuntimeError, match='2 missing'):
        load_pretrained_checked(vit, path, prefix='backbone.',
                                strict_missing=True)
    # a raw state dict with DDP's `module.` prefix also works
    raw = {'module.' + k: v for k, v in ref.items()}
    report = load_pretrained_checked(vit, raw)
    assert sorted(report.missing) == ['ln2.bias', 'ln2.weight']


class _Attn(nn.Module):

    def __init__(self, side, heads=2, extra=3):
        super().__init__()
        n = (2 * side - 1)**2 + extra
        self.relative_position_bias_table = nn.Parameter(torch.zeros(n, heads))
        self.register_buffer('relative_position_index',
                             torch.zeros(side * side + 1, side * side + 1))


class _Block(nn.Module):

    def __init__(self, side):
        super().__init__()
        self.attn = _Attn(side)


class _RelViT(nn.Module):

    def __init__(self, side, depth=2):
        super().__init__()
        self.layers = nn.ModuleList(_Block(side) for _ in range(depth))


def test_shared_rel_pos_table_copied_and_resized():
    # SimMIM / BEiT pre-training shares one table; fine-tuning has one per
    # block, for a different grid (4x4 -> 6x6).
    src = torch.randn((2 * 4 - 1)**2 + 3, 2)
    sd = {'rel_pos_bias.relative_position_bias_table': src,
          'rel_pos_bias.relative_position_index': torch.zeros(17, 17)}
    model = _RelViT(side=6)
    out = adapt_state_dict(model, sd)
    expect = resize_rel_pos_table(src, torch.Size([(2 * 6 - 1)**2 + 3, 2]))
    for i in range(2):
        torch.testing.assert_close(
            out[f'layers.{i}.attn.relative_position_bias_table'], expect)
    # the 3 cls entries are carried over unchanged; the grid part is a
    # bicubic resize of the 7x7 table to 11x11
    torch.testing.assert_close(expect[-3:], src[-3:])
    grid = F.interpolate(src[:-3].T.reshape(1, 2, 7, 7), size=(11, 11),
                         mode='bicubic', align_corners=False)
    torch.testing.assert_close(expect[:-3], grid.reshape(2, -1).T)
    report = load_pretrained_checked(model, copy.deepcopy(sd))
    assert sorted(report.loaded) == [
        'layers.0.attn.relative_position_bias_table',
        'layers.1.attn.relative_position_bias_table'
    ]
    # the shared table was consumed; the per-block index buffers are the
    # module's own and not reported missing
    assert report.unexpected == [] and report.missing == []


# ---------------------------------------------------------------- iTPN
HIVIT_TINY = dict(embed_dims=64, depths=[1, 1, 2], num_heads=2)


@pytest.fixture(scope='module')
def itpn_ckpt(tmp_path_factory):
    init_default_scope('mmpretrain')
    model = MODELS.build(
        dict(type='iTPNPretrainer',
             backbone=dict(type='iTPNBackbone', arch=HIVIT_TINY, img_size=64,
                           patch_size=16),
             neck=dict(type='iTPNPyramidNeck', in_channels=64, fpn_dim=32,
                       fpn_depth=1),
             decoder=dict(type='iTPNPixelDecoder', num_patches=16,
                          patch_size=16, fpn_dim=32, embed_dim=64, depth=1,
                          num_heads=2),
             head=dict(type='iTPNPixelHead', patch_size=16)))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    path = str(tmp_path_factory.mktemp('ckpt') / 'itpn_tiny.pth')
    torch.save(dict(meta=dict(), state_dict=sd), path)
    split = {}
    for part in ('backbone', 'neck'):
        split[part] = {k[len(part) + 1:]: v for k, v in sd.items()
                       if k.startswith(part + '.')}
    return path, split


def _build_itpn(cfg_file, ckpt, scope, img_size, **backbone):
    cfg = Config.fromfile(f'{BENCH}/{cfg_file}')
    cfg.model.backbone.update(arch=HIVIT_TINY, img_size=img_size, **backbone)
    cfg.model.backbone.init_cfg.checkpoint = ckpt
    neck = cfg.model.neck
    if isinstance(neck, dict) and neck.type.endswith('iTPNPyramidNeck'):
        neck.update(in_channels=64, fpn_dim=32, fpn_depth=1)
        neck.init_cfg.checkpoint = ckpt
    elif isinstance(neck, dict):
        neck.in_channels = 64
    if scope == 'mmpretrain':
        cfg.model.head.in_channels = 64
    if scope == 'mmseg':
        bn = dict(type='BN', requires_grad=True)
        cfg.model.decode_head.update(in_channels=[48, 64, 96, 96],
                                     channels=16, norm_cfg=bn)
        cfg.model.auxiliary_head.update(in_channels=96, channels=16,
                                        norm_cfg=bn)
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    init_default_scope(scope)
    model = registry.build(cfg.model)
    model.init_weights()
    return model


NEW_REL_TABLES = ['blocks.4.attn.relative_position_bias_table',
                  'blocks.5.attn.relative_position_bias_table']
ITPN_CASES = [
    # fine-tuning and segmentation switch relative position bias on: the new
    # per-block tables are the only missing keys
    ('classification/itpn_hivit-base-p16_ft-100e_in1k.py', 'mmpretrain', 32,
     {}, NEW_REL_TABLES),
    # detection keeps the table at the pre-training grid (img_size 224 for
    # ImageNet; 64 for the tiny checkpoint)
    ('mask_rcnn/itpn_hivit-base-p16_pyramid_mask-rcnn_1x_coco.py', 'mmdet',
     64, {}, []),
    # segmentation: 512 px grid for the relative tables, the absolute table
    # kept at the pre-training grid (pos_embed_size 14; 4 for the tiny one)
    ('upernet/itpn_hivit-base-p16_upernet_160k_ade20k-512x512.py', 'mmseg',
     32, dict(pos_embed_size=4), NEW_REL_TABLES),
]


@pytest.mark.parametrize('cfg_file,scope,img_size,backbone,missing',
                         ITPN_CASES)
def test_itpn_downstream_loads_backbone_and_pyramid(itpn_ckpt, cfg_file,
                                                    scope, img_size, backbone,
                                                    missing):
    path, ref = itpn_ckpt
    model = _build_itpn(cfg_file, path, scope, img_size, **backbone)
    bb = model.backbone.pretrained_load_report
    assert sorted(bb.missing) == sorted(missing)
    assert bb.unexpected == [] and bb.mismatched == []
    assert set(bb.loaded) == set(ref['backbone'])
    own = model.backbone.state_dict()
    for k in bb.loaded:
        if k != 'pos_embed':
            torch.testing.assert_close(own[k], ref['backbone'][k], msg=k)
    if model.backbone.pos_embed_grid != (4, 4):  # 4x4 pre-training grid
        assert bb.adapted == ['pos_embed: (1, 16, 64) -> (1, 4, 64)']
    else:
        torch.testing.assert_close(own['pos_embed'],
                                   ref['backbone']['pos_embed'])
    if scope != 'mmpretrain':  # every pyramid key, with its values
        nk = model.neck.pretrained_load_report
        assert nk.missing == [] and nk.unexpected == []
        assert set(nk.loaded) == set(ref['neck'])
        for k, v in model.neck.state_dict().items():
            torch.testing.assert_close(v, ref['neck'][k], msg=k)


def test_itpn_neck_that_loads_nothing_raises(itpn_ckpt):
    path, _ = itpn_ckpt
    init_default_scope('mmpretrain')
    neck = MODELS.build(
        dict(type='iTPNPyramidNeck', in_channels=64, fpn_dim=32, fpn_depth=1,
             out_mode='fpn',
             init_cfg=dict(type='Pretrained', checkpoint=path,
                           prefix='decoder.')))
    with pytest.raises(RuntimeError, match='nothing was loaded'):
        neck.init_weights()
    # a 512-wide pyramid checkpoint into a 256-wide neck (the reference
    # release): shape mismatches are reported and the load refuses
    neck = MODELS.build(dict(type='iTPNPyramidNeck', in_channels=64,
                             fpn_dim=16, fpn_depth=1, out_mode='fpn'))
    with pytest.raises(RuntimeError, match='loaded only'):
        load_pretrained_checked(neck, path, prefix='neck.')
    assert len(neck.pretrained_load_report.mismatched) > 10


def test_simmim_shared_table_into_finetune_blocks(tmp_path):
    cfg = Config.fromfile('configs/demo/simmim_fashion-mnist.py')
    cfg.model.backbone.arch = TINY
    cfg.model.neck.in_channels = 32
    init_default_scope('mmpretrain')
    pre = MODELS.build(cfg.model)
    with torch.no_grad():
        for p in pre.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    path = str(tmp_path / 'simmim_tiny.pth')
    torch.save(dict(state_dict=pre.state_dict()), path)
    ref = {k[9:]: v for k, v in pre.state_dict().items()
           if k.startswith('backbone.')}
    # fine-tune at 48 px: the 8x8 grid's table (15^2 + 3 rows) -> 12x12's
    model = _build('classification/simmim_vit-base-p16_ft-100e_in1k.py',
                   path, 'mmpretrain', img_size=48)
    report = model.backbone.pretrained_load_report
    assert report.missing == ['ln2.weight', 'ln2.bias']
    assert report.unexpected == ['ln1.weight', 'ln1.bias']
    shared = ref['rel_pos_bias.relative_position_bias_table']
    expect = resize_rel_pos_table(shared, torch.Size([23 * 23 + 3, 2]))
    for i in range(2):
        torch.testing.assert_close(
            model.backbone.layers[i].attn.relative_position_bias_table.data,
            expect)
        torch.testing.assert_close(
            model.backbone.layers[i].gamma_1.data,
            ref[f'layers.{i}.gamma_1'])


def _extract_tool():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'extract_backbone', 'tools/model_converters/extract_backbone.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_extract_backbone_then_load(tiny_ckpt, tmp_path):
    path, ref = tiny_ckpt
    tool = _extract_tool()
    sd = torch.load(path, weights_only=True)['state_dict']
    kept = tool.extract(sd, ['backbone'])
    assert set(kept) == {'backbone.' + k for k in ref}
    plain = tool.extract(sd, ['backbone'], strip_prefix=True,
                         drop='mask_token')
    assert set(plain) == set(ref)
    out = str(tmp_path / 'plain.pth')
    torch.save(dict(state_dict=plain), out)
    # stripped keys load without a prefix, with the same report
    model = _build('mask_rcnn/mae_vit-base-p16_simple-fpn_mask-rcnn_1x_coco.py',
                   out, 'mmdet', prefix=None, img_size=32,
                   out_indices=(1, ))
    model_ref = model.backbone.pretrained_load_report
    assert model_ref.missing == [] and sorted(model_ref.unexpected) == [
        'ln1.bias', 'ln1.weight']


def test_extract_teacher_and_neck():
    tool = _extract_tool()
    sd = {'module.backbone.a': torch.zeros(1), 'module.neck.b': torch.ones(1),
          'module.target_generator.teacher.backbone.a': torch.full((1, ), 2.),
          'module.head.c': torch.zeros(1)}
    assert list(tool.extract(sd, ['backbone', 'neck'])) == [
        'backbone.a', 'neck.b'
    ]
    teacher = tool.extract(sd, ['backbone'], source='teacher')
    assert list(teacher) == ['backbone.a'] and teacher['backbone.a'] == 2.
    with pytest.raises(KeyError, match='top-level modules'):
        tool.extract(sd, ['decoder'])


DEMO_DOWNSTREAM = [
    ('classification/demo_mae-vit_ft_fashion-mnist.py', 'mmpretrain'),
    ('mask_rcnn/canvas_mae-vit-demo_simple-fpn_mask-rcnn.py', 'mmdet'),
    ('upernet/canvas_mae-vit-demo_upernet.py', 'mmseg'),
]


@pytest.fixture(scope='module')
def demo_mae_ckpt(tmp_path_factory):
    """A checkpoint of the MAE demo model exactly as configured."""
    cfg = Config.fromfile('configs/demo/mae_fashion-mnist.py')
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    model.init_weights()
    path = str(tmp_path_factory.mktemp('ckpt') / 'mae_demo.pth')
    torch.save(dict(meta=dict(), state_dict=model.state_dict()), path)
    return path, {k[len('backbone.'):]: v
                  for k, v in model.state_dict().items()
                  if k.startswith('backbone.')}


@pytest.mark.parametrize('cfg_file,scope', DEMO_DOWNSTREAM)
def test_demo_downstream_configs_load_the_demo_pretraining(cfg_file, scope,
                                                           demo_mae_ckpt):
    # the downstream demos must follow configs/demo/mae_fashion-mnist.py's
    # encoder, untouched: every block and the patch embedding load
    path, ckpt = demo_mae_ckpt
    cfg = Config.fromfile(f'{BENCH}/{cfg_file}')
    assert cfg.model.backbone.init_cfg.checkpoint == \
        'work_dirs/demo_mae/iter_800.pth'  # what run_demo.sh mae writes
    cfg.model.backbone.init_cfg.checkpoint = path
    init_default_scope(scope)
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    model = registry.build(cfg.model)
    model.init_weights()
    state = model.backbone.state_dict()
    blocks = [k for k in ckpt if k.startswith(('layers.', 'patch_embed.'))]
    assert len(blocks) > 40
    for key in blocks:
        torch.testing.assert_close(state[key], ckpt[key], msg=key)


def test_load_state_dict_adapts_tables_to_other_grids():
    """``load_from`` / ``load_state_dict`` (not only ``init_cfg``) adapt the
    position tables, under the module's prefix and to non-square grids."""
    from mmengine.runner.checkpoint import load_state_dict
    from timm.layers import resize_rel_pos_bias_table_simple
    init_default_scope('mmpretrain')
    # an algorithm-level state dict: the backbone's hook sees 'backbone.'
    src = MODELS.build(dict(type='MaskedViT', arch=TINY, img_size=16,
                            patch_size=4, pos_embed_type='learnable'))
    dst = MODELS.build(dict(type='MaskedViT', arch=TINY, img_size=32,
                            patch_size=4, pos_embed_type='learnable'))
    holder = nn.Module()
    holder.backbone = dst
    sd = {'backbone.' + k: v for k, v in src.state_dict().items()}
    load_state_dict(holder, sd, strict=True)
    grid = src.pos_embed.detach()[:, 1:].reshape(1, 4, 4, 32)
    expect = F.interpolate(grid.permute(0, 3, 1, 2), size=(8, 8),
                           mode='bicubic', align_corners=False)
    torch.testing.assert_close(
        dst.pos_embed.detach()[:, 1:],
        expect.permute(0, 2, 3, 1).reshape(1, 64, 32))
    # iTPN: per-block tables from a 2 x 2 grid to a 2 x 4 one
    itpn = dict(type='iTPNBackbone', arch=HIVIT_TINY, patch_size=16,
                use_rel_pos_bias=True)
    src = MODELS.build(dict(itpn, img_size=32))
    dst = MODELS.build(dict(itpn, img_size=(32, 64)))
    result = dst.load_state_dict(src.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    key = 'blocks.4.attn.relative_position_bias_table'
    assert src.state_dict()[key].shape == (9, 2)
    torch.testing.assert_close(
        dst.state_dict()[key],
        resize_rel_pos_bias_table_simple(src.state_dict()[key], (2, 4),
                                         (21, 2)))
    assert dst.pos_embed.shape == (1, 8, 64)


# modules that load their weights another way, by design
OWN_LOADING = {
    'FinetuneSwinTransformer': 'the reference geometric table resize, then '
    'load_pretrained_checked',
}


def test_every_mmmim_backbone_neck_and_head_loads_checked():
    """The guarantee of docs/transfer.md section 3 holds for every backbone,
    neck and head mmmim registers (a new one must inherit
    CheckedLoadingMixin or be listed above with its reason)."""
    import inspect
    from mmengine.model import BaseModule

    from mmmim.models.utils import CheckedLoadingMixin
    unchecked = []
    for name, cls in MODELS.module_dict.items():
        module = inspect.getmodule(cls).__name__
        if not module.startswith(('mmmim.models.backbones',
                                  'mmmim.models.necks', 'mmmim.models.heads')):
            continue
        if issubclass(cls, BaseModule) and not issubclass(
                cls, CheckedLoadingMixin) and name not in OWN_LOADING:
            unchecked.append(name)
    assert unchecked == []
    assert issubclass(MODELS.get('HPMTarget'), CheckedLoadingMixin)
