"""Layer-wise lr decay: lr scale d^(depth + 1 - id) with the ViT / HiViT
layer ids, through mmpretrain's, mmdet's and mmseg's registries."""
import pytest
import torch
import torch.nn as nn
from mmengine import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope, init_default_scope

from mmpretrain.registry import MODELS

from mmmim.engine.optimizers import MIMLayerDecayOptimWrapperConstructor

TINY = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)
BENCH = 'configs/benchmarks'
D = 0.65


def _groups(optim_wrapper):
    """param name -> (lr_scale, weight_decay, lr, layer_id)."""
    out = {}
    for g in optim_wrapper.optimizer.param_groups:
        for name in g['param_names']:
            out[name] = (g['lr_scale'], g['weight_decay'], g['lr'],
                         g['layer_id'])
    return out


def _optim_cfg(decay=D, **paramwise):
    return dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
        constructor='MIMLayerDecayOptimWrapperConstructor',
        paramwise_cfg=dict(layer_decay_rate=decay, **paramwise))


def test_registered_in_all_three_libraries():
    from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS as DET
    from mmpretrain.registry import OPTIM_WRAPPER_CONSTRUCTORS as PRE
    from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS as SEG
    for reg in (PRE, DET, SEG):
        assert reg.get('MIMLayerDecayOptimWrapperConstructor') is \
            MIMLayerDecayOptimWrapperConstructor


def _check_vit(groups, depth, prefix='backbone.', wd=0.05, base_lr=1e-3,
               bias_wd=0., token_wd=0.):
    """ViT layer ids and decay; ``bias_wd`` / ``token_wd``: the weight decay
    the rule gives biases / the cls token (0 for MAE's rule)."""
    top = depth + 1
    expect = {
        'patch_embed.projection.weight': (0, wd),
        'patch_embed.projection.bias': (0, bias_wd),
        'cls_token': (0, token_wd),
        'layers.0.attn.qkv.weight': (1, wd),
        'layers.0.ln1.weight': (1, 0.),
        f'layers.{depth - 1}.ffn.layers.1.weight': (depth, wd),
        f'layers.{depth - 1}.ffn.layers.1.bias': (depth, bias_wd),
    }
    for name, (layer_id, decay) in expect.items():
        scale, got_wd, lr, got_id = groups[prefix + name]
        assert got_id == layer_id, name
        assert scale == pytest.approx(D**(top - layer_id)), name
        assert lr == pytest.approx(base_lr * D**(top - layer_id)), name
        assert got_wd == decay, name
    # everything outside the backbone: id depth + 1, scale 1
    for name, (scale, _, _, layer_id) in groups.items():
        if not name.startswith(prefix):
            assert (scale, layer_id) == (1.0, top), name


def test_vit_classifier_mmpretrain():
    cfg = Config.fromfile(
        f'{BENCH}/classification/mae_vit-base-p16_ft-100e_in1k.py')
    cfg.model.backbone.update(arch=TINY, img_size=32, patch_size=4,
                              init_cfg=None)
    cfg.model.head.in_channels = 32
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    cfg.optim_wrapper.type = 'OptimWrapper'  # AMP needs a GPU
    groups = _groups(build_optim_wrapper(model, cfg.optim_wrapper))
    _check_vit(groups, depth=2, base_lr=2e-3)  # 5e-4 x 1024 / 256
    # fine-tuning trains the (loaded) pos embed, without weight decay
    assert groups['backbone.pos_embed'][:2] == (pytest.approx(D**3), 0.)
    assert groups['backbone.ln2.weight'][:2] == (1.0, 0.)  # fc_norm
    assert groups['head.fc.weight'][:2] == (1.0, 0.05)
    assert groups['head.fc.bias'][:2] == (1.0, 0.)


@pytest.mark.parametrize('cfg_file,decay', [
    ('mae_vit-base-p16_ft-100e_in1k.py', 0.65),
    ('hpm_vit-base-p16_ft-100e_in1k.py', 0.8),
    ('sim_vit-base-p16_ft-100e_in1k.py', 0.65),
    ('simmim_vit-base-p16_ft-100e_in1k.py', 0.65),
])
def test_vit_base_configs_on_meta(cfg_file, decay):
    cfg = Config.fromfile(f'{BENCH}/classification/{cfg_file}')
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == decay
    init_default_scope('mmpretrain')
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    cfg.optim_wrapper.type = 'OptimWrapper'
    groups = _groups(build_optim_wrapper(model, cfg.optim_wrapper))
    assert groups['backbone.patch_embed.projection.weight'][0] == \
        pytest.approx(decay**13)
    assert groups['backbone.layers.0.attn.qkv.weight'][0] == \
        pytest.approx(decay**12)
    assert groups['backbone.layers.11.attn.qkv.weight'][0] == \
        pytest.approx(decay)
    assert groups['head.fc.weight'][0] == 1.0


def _tiny_det_cfg():
    cfg = Config.fromfile(
        f'{BENCH}/mask_rcnn/mae_vit-base-p16_simple-fpn_mask-rcnn_1x_coco.py')
    cfg.model.backbone.update(arch=TINY, img_size=64, patch_size=4,
                              out_indices=(1, ), init_cfg=None)
    cfg.model.neck.in_channels = 32
    return cfg


def test_vit_mask_rcnn_mmdet():
    from mmdet.registry import MODELS as DET
    cfg = _tiny_det_cfg()
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = DET.build(cfg.model)
        cfg.optim_wrapper.type = 'OptimWrapper'
        ow = build_optim_wrapper(model, cfg.optim_wrapper)
    global D
    d, D = D, cfg.optim_wrapper.paramwise_cfg.layer_decay_rate  # 0.7
    try:
        groups = _groups(ow)
        # ViTDet's (detectron2's) rule: norms and pos_embed not decayed,
        # biases and the cls token decayed
        _check_vit(groups, depth=2, wd=0.1, base_lr=1e-4 * 16 / 64,
                   bias_wd=0.1, token_wd=0.1)
    finally:
        D = d
    assert groups['backbone.pos_embed'][1] == 0.
    assert groups['neck.stages.0.0.weight'][:2] == (1.0, 0.1)
    assert any(k.startswith('rpn_head.') for k in groups)  # all at 1.0


def test_vit_upernet_mmseg():
    from mmseg.registry import MODELS as SEG
    cfg = Config.fromfile(
        f'{BENCH}/upernet/mae_vit-base-p16_upernet_160k_ade20k-512x512.py')
    bn = dict(type='BN', requires_grad=True)
    cfg.model.backbone.update(arch=TINY, img_size=32, patch_size=4,
                              out_indices=(0, 1, 1, 1), init_cfg=None)
    cfg.model.neck.update(embed_dim=32, norm_cfg=bn)
    cfg.model.decode_head.update(in_channels=[32] * 4, channels=16,
                                 norm_cfg=bn)
    cfg.model.auxiliary_head.update(in_channels=32, channels=16, norm_cfg=bn)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = SEG.build(cfg.model)
        cfg.optim_wrapper.type = 'OptimWrapper'
        groups = _groups(build_optim_wrapper(model, cfg.optim_wrapper))
    # mmseg's rule: 1-D params and biases only; the cls token and position
    # table are decayed
    _check_vit(groups, depth=2, base_lr=1e-4, token_wd=0.05)
    assert groups['backbone.pos_embed'][1] == 0.05
    assert groups['backbone.layers.1.ffn.gamma2.weight'][:2] == (D, 0.)
    assert groups['decode_head.conv_seg.weight'][0] == 1.0


class _Wrapper(nn.Module):
    """Any model with a ``backbone`` (detector / segmentor stand-in)."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(4, 2)


HIVIT_TINY = dict(embed_dims=64, depths=[1, 1, 2], num_heads=2)


def _hivit(**kw):
    return MODELS.build(dict(type='iTPNBackbone', **kw))


@pytest.mark.parametrize('scope', ['mmpretrain', 'mmdet', 'mmseg'])
def test_hivit_ids_in_all_libraries(scope):
    model = _Wrapper(_hivit(arch=HIVIT_TINY, img_size=64))
    with DefaultScope.overwrite_default_scope(scope):
        groups = _groups(build_optim_wrapper(model, _optim_cfg()))
    # blocks: [mlp, merge, mlp, merge, attn, attn]; a merge shares the id of
    # the block before it; 4 blocks -> depth + 1 = 5
    ids = {'patch_embed.proj.weight': 0, 'pos_embed': 0,
           'blocks.0.mlp.fc1.weight': 1, 'blocks.1.reduction.weight': 1,
           'blocks.2.mlp.fc1.weight': 2, 'blocks.3.reduction.weight': 2,
           'blocks.4.attn.qkv.weight': 3, 'blocks.5.attn.qkv.weight': 4}
    for name, layer_id in ids.items():
        scale, _, _, got = groups['backbone.' + name]
        assert got == layer_id, name
        assert scale == pytest.approx(D**(5 - layer_id)), name
    assert groups['head.weight'][0] == 1.0
    assert groups['backbone.pos_embed'][1] == 0.


def test_itpn_30_block_rescaling_on_meta():
    # iTPN fine-tuning: d = 0.60 over 30 blocks, rescaled to a 12-block
    # equivalent: d_eff = d^(13/31), scale = d_eff^(31 - id)
    with torch.device('meta'):
        model = _Wrapper(_hivit(arch='base', img_size=224))
    d = 0.60
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        groups = _groups(
            build_optim_wrapper(model, _optim_cfg(d, rescale_depth=12)))
    d_eff = d**(13 / 31)
    n = len(model.backbone.blocks)
    assert n == 32  # 30 blocks + 2 merges
    assert groups['backbone.patch_embed.proj.weight'][0] == \
        pytest.approx(d**13)
    assert groups['backbone.blocks.0.mlp.fc1.weight'][0] == \
        pytest.approx(d_eff**30)
    last = f'backbone.blocks.{n - 1}.attn.qkv.weight'
    assert groups[last][3] == 30
    assert groups[last][0] == pytest.approx(d_eff)
    assert groups['head.weight'][0] == 1.0


def test_itpn_finetune_config_rescaling_on_meta():
    cfg = Config.fromfile(
        f'{BENCH}/classification/itpn_hivit-base-p16_ft-100e_in1k.py')
    assert cfg.optim_wrapper.paramwise_cfg == dict(layer_decay_rate=0.60,
                                                   rescale_depth=12)
    init_default_scope('mmpretrain')
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    cfg.optim_wrapper.type = 'OptimWrapper'
    groups = _groups(build_optim_wrapper(model, cfg.optim_wrapper))
    d_eff = 0.60**(13 / 31)
    assert groups['backbone.patch_embed.proj.weight'][0] == \
        pytest.approx(0.60**13)
    assert groups['backbone.blocks.31.attn.qkv.weight'][0] == \
        pytest.approx(d_eff)
    assert groups['backbone.blocks.31.attn.relative_position_bias_table'][
        1] == 0.
    assert groups['neck.fc_norm.weight'][:2] == (1.0, 0.)
    assert groups['head.fc.weight'][0] == 1.0


def test_flat_rule_over_the_block_list():
    # blocks: [mlp, merge, mlp, merge, attn, attn] -> ids 1..6 over the flat
    # list (merges counted); with num_layers=4 the ids past 5 get scales > 1
    model = _Wrapper(_hivit(arch=HIVIT_TINY, img_size=64))
    with DefaultScope.overwrite_default_scope('mmdet'):
        groups = _groups(build_optim_wrapper(model, _optim_cfg(
            layer_id_rule='flat', num_layers=4,
            first_layer_names=('patch_embed', ))))
    ids = {'patch_embed.proj.weight': 0, 'blocks.0.mlp.fc1.weight': 1,
           'blocks.1.reduction.weight': 2, 'blocks.3.reduction.weight': 4,
           'blocks.5.attn.qkv.weight': 6, 'pos_embed': 5}
    for name, layer_id in ids.items():
        scale, _, _, got = groups['backbone.' + name]
        assert got == layer_id, name
        assert scale == pytest.approx(D**(5 - layer_id)), name
    assert groups['backbone.blocks.5.attn.qkv.weight'][0] > 1
    assert groups['head.weight'][3] == 5
    with pytest.raises(ValueError, match='num_layers'):
        build_optim_wrapper(model, _optim_cfg(layer_id_rule='flat'))
    with pytest.raises(ValueError, match='layer_id_rule'):
        build_optim_wrapper(model, _optim_cfg(layer_id_rule='nested'))


@pytest.mark.parametrize('cfg_file,scope,pos_id', [
    # detection: the reference's id-0 list misses its absolute table
    ('mask_rcnn/itpn_hivit-base-p16_pyramid_mask-rcnn_1x_coco.py', 'mmdet',
     31),
    ('upernet/itpn_hivit-base-p16_upernet_160k_ade20k-512x512.py', 'mmseg',
     0),
])
def test_itpn_dense_configs_use_the_reference_rule(cfg_file, scope, pos_id):
    cfg = Config.fromfile(f'{BENCH}/{cfg_file}')
    pw = cfg.optim_wrapper.paramwise_cfg
    assert (pw.layer_id_rule, pw.num_layers) == ('flat', 30)
    model = _Wrapper(_hivit(arch=HIVIT_TINY, img_size=64))
    model.neck = nn.Linear(2, 2)  # stands for the pre-trained pyramid
    with DefaultScope.overwrite_default_scope(scope):
        cfg.optim_wrapper.type = 'OptimWrapper'
        groups = _groups(build_optim_wrapper(model, cfg.optim_wrapper))
    d = pw.layer_decay_rate
    assert groups['backbone.patch_embed.proj.weight'][0] == \
        pytest.approx(d**31)
    assert groups['backbone.blocks.5.attn.qkv.weight'][0] == \
        pytest.approx(d**25)  # flat index 5 -> id 6 of num_layers + 2 = 32
    assert groups['backbone.pos_embed'][3] == pos_id
    assert groups['neck.weight'][0] == 1.0
