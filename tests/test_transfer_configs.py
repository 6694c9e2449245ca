"""Every downstream config builds (tiny archs via overrides) and runs one
training iteration on CPU: classification on random images, Mask R-CNN and
UperNet on the Fashion-MNIST canvas sets through their own data pipelines."""
import copy

import pytest
import torch
from mmengine import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from .conftest import require_fashion_mnist, requires_fashion_mnist

BENCH = 'configs/benchmarks'
TINY = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)
HIVIT_TINY = dict(embed_dims=64, depths=[1, 1, 2], num_heads=2)


def _registry(scope):
    return __import__(f'{scope}.registry', fromlist=['MODELS'])


def _cpu_optim(cfg):
    ow = copy.deepcopy(cfg.optim_wrapper)
    ow.type = 'OptimWrapper'  # AmpOptimWrapper needs a GPU
    ow.pop('loss_scale', None)
    return ow


def _step(model, cfg, data, scope):
    """One train_step; returns (losses, {param name: changed?})."""
    with DefaultScope.overwrite_default_scope(scope):
        ow = build_optim_wrapper(model, _cpu_optim(cfg))
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        model.train()
        losses = model.train_step(data, ow)
    changed = {n: not torch.equal(before[n], p.detach())
               for n, p in model.named_parameters()}
    for k, v in losses.items():
        assert torch.isfinite(torch.as_tensor(v)).all(), k
    return losses, changed


# ---------------------------------------------------------------- classify
CLS = [
    'mae_vit-base-p16_ft-100e_in1k.py',
    'hpm_vit-base-p16_ft-100e_in1k.py',
    'sim_vit-base-p16_ft-100e_in1k.py',
    'simmim_vit-base-p16_ft-100e_in1k.py',
    'mae_vit-base-p16_linear-90e_in1k.py',
    'sim_vit-base-p16_linear-90e_in1k.py',
    'itpn_hivit-base-p16_ft-100e_in1k.py',
    'itpn_hivit-base-p16_linear-90e_in1k.py',
]


def _tiny_cls(cfg):
    bb = cfg.model.backbone
    if bb.type in ('MaskedViT', 'SimMIMViT'):
        bb.update(arch=TINY, img_size=32, patch_size=4)
        if bb.get('frozen_stages', -1) > 0:
            bb.frozen_stages = 2
        dims = 32
    else:  # iTPN HiViT
        bb.update(arch=HIVIT_TINY, img_size=32)
        dims = 64
        if isinstance(cfg.model.neck, dict) and \
                cfg.model.neck.type == 'PoolNormNeck':
            cfg.model.neck.in_channels = dims
    bb.init_cfg = None
    # as the Runner does: the top-level data_preprocessor joins the model
    if 'data_preprocessor' in cfg:
        cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    if cfg.model.get('data_preprocessor'):
        cfg.model.data_preprocessor.num_classes = 10
    cfg.model.head.in_channels = dims
    cfg.model.head.num_classes = 10
    necks = cfg.model.get('neck') or []
    for n in (necks if isinstance(necks, list) else [necks]):
        if 'input_features' in n:
            n.input_features = dims
        if n.get('type') == 'PoolNormNeck':
            n.in_channels = dims
    return cfg


def _cls_batch(n=4, size=32):
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(0)
    return dict(
        inputs=[torch.randint(0, 256, (3, size, size), generator=g,
                              dtype=torch.uint8) for _ in range(n)],
        data_samples=[DataSample().set_gt_label(i % 10) for i in range(n)])


@pytest.mark.parametrize('cfg_file', CLS)
def test_classification_config_one_iteration(cfg_file):
    cfg = _tiny_cls(Config.fromfile(f'{BENCH}/classification/{cfg_file}'))
    assert cfg.default_scope == 'mmpretrain'
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = _registry('mmpretrain').MODELS.build(cfg.model)
        model.init_weights()
    losses, changed = _step(model, cfg, _cls_batch(), 'mmpretrain')
    assert set(losses) == {'loss'}
    assert changed['head.fc.weight']
    itpn = 'itpn' in cfg_file
    block = ('backbone.blocks.4.attn.qkv.weight'
             if itpn else 'backbone.layers.0.attn.qkv.weight')
    if 'linear' in cfg_file:
        # frozen encoder: only the BN-less probe (BN has no affine) moves
        assert not any(v for k, v in changed.items()
                       if k.startswith('backbone.'))
        assert [k for k, v in changed.items() if v] == [
            'head.fc.weight', 'head.fc.bias'
        ]
    else:
        fc_norm = 'neck.fc_norm.weight' if itpn else 'backbone.ln2.weight'
        assert changed[block] and changed[fc_norm]
        if itpn:  # fine-tuning switches relative position bias on
            assert changed[
                'backbone.blocks.5.attn.relative_position_bias_table']


# ------------------------------------------------------------- canvas data
@pytest.fixture(scope='module')
def canvas(tmp_path_factory):
    require_fashion_mnist()
    from mmmim.datasets.canvas import make_canvas_sets
    root = tmp_path_factory.mktemp('canvas')
    return make_canvas_sets(str(root), num_train=4, num_val=2, size=64)


def _batch_from_dataset(cfg_dataset, scope, n=2):
    with DefaultScope.overwrite_default_scope(scope):
        ds = _registry(scope).DATASETS.build(cfg_dataset)
        return pseudo_collate([ds[i] for i in range(n)])


def _shrink_pipeline(pipeline, scale, crop=None):
    for t in pipeline:
        if t.type in ('Resize', 'RandomResize'):
            t.scale = scale
        if t.type == 'RandomChoiceResize':
            t.scales = [scale]
        if t.type == 'RandomCrop':
            t.crop_size = crop or scale
        if t.type == 'RandomChoice':  # nested pipelines
            for option in t.transforms:
                _shrink_pipeline(option, scale, crop)


# ------------------------------------------------------------------- detect
def _tiny_det(cfg, canvas):
    bb = cfg.model.backbone
    if bb.type == 'mmpretrain.MaskedViT':
        bb.update(arch=TINY, img_size=64, patch_size=4, out_indices=(1, ))
        cfg.model.neck.update(in_channels=32, out_channels=32,
                              scale_factors=(1.0, 0.5, 0.25))
    else:  # iTPN: backbone + pre-trained pyramid
        bb.update(arch=HIVIT_TINY, img_size=64)
        cfg.model.neck.update(in_channels=64, fpn_dim=32, fpn_depth=1,
                              init_cfg=None)
    # 32-wide heads (GN with 32 groups still divides)
    cfg.model.rpn_head.update(in_channels=32, feat_channels=32)
    roi = cfg.model.roi_head
    roi.bbox_roi_extractor.out_channels = 32
    roi.mask_roi_extractor.out_channels = 32
    roi.bbox_head.update(in_channels=32, conv_out_channels=32,
                         fc_out_channels=32)
    roi.mask_head.update(in_channels=32, conv_out_channels=32)
    bb.init_cfg = None
    ds = cfg.train_dataloader.dataset
    ds.update(data_root=canvas['coco_root'] + '/',
              ann_file='annotations/instances_train.json',
              data_prefix=dict(img='train/'),
              metainfo=dict(classes=('T-shirt_top', 'Trouser', 'Pullover',
                                     'Dress', 'Coat', 'Sandal', 'Shirt',
                                     'Sneaker', 'Bag', 'Ankle boot')))
    ds.filter_cfg = dict(filter_empty_gt=True, min_size=8)
    _shrink_pipeline(ds.pipeline, (64, 64))
    return cfg


DET = [
    'mae_vit-base-p16_simple-fpn_mask-rcnn_1x_coco.py',
    'canvas_mae-vit-demo_simple-fpn_mask-rcnn.py',
    'canvas_mae-vit-canvas_simple-fpn_mask-rcnn.py',
    'itpn_hivit-base-p16_pyramid_mask-rcnn_1x_coco.py',
    'canvas_itpn-hivit-canvas_pyramid_mask-rcnn.py',
]


@requires_fashion_mnist
@pytest.mark.parametrize('cfg_file', DET)
def test_mask_rcnn_config_one_iteration(cfg_file, canvas):
    cfg = _tiny_det(Config.fromfile(f'{BENCH}/mask_rcnn/{cfg_file}'), canvas)
    assert cfg.default_scope == 'mmdet'
    data = _batch_from_dataset(cfg.train_dataloader.dataset, 'mmdet')
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = _registry('mmdet').MODELS.build(cfg.model)
        model.init_weights()
        feats = model.extract_feat(
            model.data_preprocessor(copy.deepcopy(data))['inputs'])
    # 5 levels at the anchors' strides (4..64; iTPN with patch 8: 2..32) of
    # the padded 64 px input
    strides = cfg.model.rpn_head.anchor_generator.strides
    assert [f.shape[-1] for f in feats] == [64 // s for s in strides]
    losses, changed = _step(model, cfg, data, 'mmdet')
    for key in ('loss_rpn_cls', 'loss_cls', 'loss_bbox', 'loss_mask'):
        assert key in losses
    assert changed[_first_attn(cfg)]
    if 'itpn' in cfg_file:
        assert changed['neck.fpn_modules.2.mlp.fc1.weight']


def _first_attn(cfg):
    return ('backbone.layers.0.attn.qkv.weight'
            if cfg.model.backbone.type.endswith('MaskedViT') else
            'backbone.blocks.4.attn.qkv.weight')


# ------------------------------------------------------------------ segment
def _tiny_seg(cfg, canvas):
    bn = dict(type='BN', requires_grad=True)
    bb = cfg.model.backbone
    if bb.type == 'mmpretrain.MaskedViT':
        bb.update(arch=dict(TINY, num_layers=4), img_size=32, patch_size=4,
                  out_indices=(0, 1, 2, 3))
        cfg.model.neck.update(embed_dim=32, norm_cfg=bn)
        in_ch, aux_ch = [32] * 4, 32
    else:  # iTPN: concat(pyramid level, backbone map)
        bb.update(arch=HIVIT_TINY, img_size=32)
        cfg.model.neck.update(in_channels=64, fpn_dim=32, fpn_depth=1,
                              init_cfg=None)
        in_ch, aux_ch = [32 + 16, 32 + 32, 32 + 64, 32 + 64], 32 + 64
    cfg.model.decode_head.update(in_channels=in_ch, channels=16,
                                 num_classes=11, norm_cfg=bn)
    cfg.model.auxiliary_head.update(in_channels=aux_ch, channels=16,
                                    num_classes=11, norm_cfg=bn)
    cfg.model.data_preprocessor.size = (32, 32)
    bb.init_cfg = None
    ds = cfg.train_dataloader.dataset
    ds.update(type='BaseSegDataset', data_root=canvas['ade_root'],
              img_suffix='.png', seg_map_suffix='.png',
              data_prefix=dict(img_path='images/training',
                               seg_map_path='annotations/training'))
    _shrink_pipeline(ds.pipeline, (64, 64), crop=(32, 32))
    for t in ds.pipeline:
        if t.type == 'LoadAnnotations':
            t.reduce_zero_label = False
    return cfg


SEG = [
    'mae_vit-base-p16_upernet_160k_ade20k-512x512.py',
    'canvas_mae-vit-demo_upernet.py',
    'canvas_mae-vit-canvas_upernet.py',
    'itpn_hivit-base-p16_upernet_160k_ade20k-512x512.py',
    'canvas_itpn-hivit-canvas_upernet.py',
]


@requires_fashion_mnist
@pytest.mark.parametrize('cfg_file', SEG)
def test_upernet_config_one_iteration(cfg_file, canvas):
    cfg = _tiny_seg(Config.fromfile(f'{BENCH}/upernet/{cfg_file}'), canvas)
    assert cfg.default_scope == 'mmseg'
    # the canvas configs test on whole 64 px canvases, the others slide
    assert cfg.model.test_cfg.mode == ('whole' if cfg_file.startswith(
        'canvas_') else 'slide')
    data = _batch_from_dataset(cfg.train_dataloader.dataset, 'mmseg')
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = _registry('mmseg').MODELS.build(cfg.model)
        model.init_weights()
    losses, changed = _step(model, cfg, data, 'mmseg')
    assert 'decode.loss_ce' in losses and 'aux.loss_ce' in losses
    assert changed[_first_attn(cfg)]
    # slide inference over a larger image
    model.eval()
    model.test_cfg.crop_size = (32, 32)
    model.test_cfg.stride = (16, 16)
    with torch.no_grad():
        logits = model.slide_inference(
            torch.randn(1, 3, 48, 48), [dict(img_shape=(48, 48),
                                             pad_shape=(48, 48))])
    assert logits.shape == (1, 11, 48, 48)
