"""The iTPN-L, CLIP-L/14-teacher, CLIP fine-tuning and Cascade Mask R-CNN
recipes against the reference architectures, and the two switches they use:
the CLIP teacher's resolution (``input_size``) and the backbone's layer
scale.

Reference names and shapes: ``tests/data/official_keys/`` (the large and
CLIP-L files are generated from the reference code by
``tools/parity/reference_key_shapes.py``).
"""
import importlib.util
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS

from .conftest import official_shapes
from .recipe_values import build_meta

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
spec = importlib.util.spec_from_file_location(
    'itpn_to_mmmim',
    osp.join(ROOT, 'tools', 'model_converters', 'itpn_to_mmmim.py'))
conv = importlib.util.module_from_spec(spec)
spec.loader.exec_module(conv)

CLS = 'configs/benchmarks/classification/'
DET = 'configs/benchmarks/mask_rcnn/'


def reference_params(name):
    """Parameters of a reference model (its buffers left out)."""
    return sum(math.prod(s) for k, s in official_shapes(name).items()
               if not k.endswith('relative_position_index'))


@pytest.mark.parametrize('config, reference', [
    ('configs/itpn/itpn-large_pixel_800e.py', 'itpn_large_pixel_dec512d8b'),
    ('configs/itpn/itpn-large_clip_300e.py', 'itpn_large_clip_b16'),
    ('configs/itpn/itpn-base_clip-l14_300e.py', 'itpn_base_clip_l14'),
    ('configs/itpn/itpn-large_clip-l14_300e.py', 'itpn_large_clip_l14'),
    (CLS + 'itpn_hivit-large-p16_ft-50e_in1k.py', 'itpn_large_pixel_ft'),
    (CLS + 'itpn-clip_hivit-large-p16_ft-50e_in1k.py', 'itpn_large_clip_ft'),
    # the reference segmentation backbone holds HiViT and the pyramid
    ('configs/benchmarks/upernet/'
     'itpn_hivit-large-p16_upernet_160k_ade20k-512x512.py',
     'itpn_large_seg_upernet_backbone'),
])
def test_parameter_count_matches_reference(config, reference):
    _, model, _ = build_meta(config)
    if hasattr(model, 'decode_head'):
        parts = (model.backbone, model.neck)
        ours = sum(p.numel() for m in parts for p in m.parameters())
    else:
        ours = sum(p.numel() for n, p in model.named_parameters()
                   if not n.startswith('target_generator.'))
    assert ours == reference_params(reference)


def test_cascade_mask_rcnn_is_mmdets_with_the_reference_box_heads():
    """Everything of mmdet's Cascade Mask R-CNN (the reference's base
    file has the same values) except the heads the reference replaces."""
    import mmdet
    from mmengine.config import Config
    cfg, model, _ = build_meta(
        DET + 'itpn_hivit-base-p16_pyramid_cascade-mask-rcnn_3x_coco.py')
    mmdet = Config.fromfile(osp.join(
        osp.dirname(mmdet.__file__), '.mim', 'configs', '_base_', 'models',
        'cascade-mask-rcnn_r50_fpn.py')).model
    ours = cfg.model
    assert ours.type == mmdet.type == 'CascadeRCNN'
    assert ours.train_cfg.to_dict() == mmdet.train_cfg.to_dict()
    assert ours.test_cfg.to_dict() == mmdet.test_cfg.to_dict()

    def mmdet_type(part):
        # the Portable* parts are mmdet's with device-portable kernels
        part = dict(part)
        part['type'] = part['type'].replace('Portable', '')
        return part

    for key in ('type', 'num_stages', 'stage_loss_weights'):
        assert ours.roi_head[key] == mmdet.roi_head[key], key
    for key in ('bbox_roi_extractor', 'mask_roi_extractor'):
        assert mmdet_type(ours.roi_head[key]) == mmdet.roi_head[key], key
    rpn_head = mmdet_type(ours.rpn_head)
    assert rpn_head.pop('num_convs') == 1  # RPNHead's default, spelled out
    assert rpn_head == mmdet.rpn_head
    # FCNMaskHead's own default (no norm), spelled out by the Mask R-CNN base
    mask_head = mmdet_type(ours.roi_head.mask_head)
    assert mask_head.pop('norm_cfg') is None
    assert mask_head == mmdet.roi_head.mask_head
    # cascade_pixel_itpn_base_3x.py:39-98: per stage 4 convs + 1 fc, SyncBN,
    # class-specific decoded-box regression with GIoU x10
    stds = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
            [0.033, 0.033, 0.067, 0.067]]
    assert len(model.roi_head.bbox_head) == 3
    for head, std in zip(model.roi_head.bbox_head, stds):
        assert (head.num_shared_convs, head.num_shared_fcs) == (4, 1)
        assert not head.reg_class_agnostic and head.reg_decoded_bbox
        assert head.loss_bbox.__class__.__name__ == 'GIoULoss'
        assert head.loss_bbox.loss_weight == 10.0
        assert list(head.bbox_coder.stds) == std
    assert len(model.roi_head.mask_head) == 3
    assert (cfg.train_cfg.max_epochs, cfg.param_scheduler[1].milestones) == \
        (36, [27, 33])


@pytest.mark.parametrize('config, reference, variant', [
    ('configs/itpn/itpn-large_pixel_800e.py', 'itpn_large_pixel_dec512d8b',
     'pixel'),
    ('configs/itpn/itpn-large_clip_300e.py', 'itpn_large_clip_b16', 'clip'),
    ('configs/itpn/itpn-base_clip-l14_300e.py', 'itpn_base_clip_l14', 'clip'),
])
def test_reference_checkpoint_layout_converts(config, reference, variant):
    """Every reference tensor maps onto the config's model, shape for
    shape (the converter raises otherwise), and nothing is left over."""
    ref = official_shapes(reference)
    model = conv.build_model(osp.join(ROOT, config), variant=variant)
    fake = {k: torch.empty(s, device='meta') for k, s in ref.items()}
    out = conv.convert(fake, model, variant)
    assert not [k for k in model.state_dict() if k not in out
                and not k.startswith('target_generator.')]


def test_clip_l14_teacher_is_clip_vit_l14():
    """The CLIP-L config's tower at its own resolution has CLIP ViT-L/14's
    parameters, name for name; at 196 px only the position table shrinks
    (257 -> 197 rows)."""
    _, model, _ = build_meta('configs/itpn/itpn-base_clip-l14_300e.py')
    teacher = model.target_generator
    ref = official_shapes('clip_vit_l14_visual')
    assert teacher.input_size == 196
    with torch.device('meta'):
        native = MODELS.build(dict(type='iTPNCLIPTeacher', arch=teacher.arch))
    assert {k: tuple(v.shape) for k, v in
            native.visual.state_dict().items()} == ref
    assert sum(p.numel() for p in native.parameters()) == 303_966_208
    assert tuple(teacher.visual.positional_embedding.shape) == (197, 1024)
    assert sum(p.numel() for p in teacher.parameters()) == \
        303_966_208 - (257 - 197) * 1024
    # both predictions are 768 wide, as CLIP-L's targets
    assert model.head.lm_head.out_features == 768
    assert model.head.lm_cls_head.out_features == 768


TINY_CLIP = dict(input_resolution=32, patch_size=8, width=64, layers=1,
                 heads=1, output_dim=24)


def _saved_tower(tmp_path):
    random_teacher = MODELS.build(dict(type='iTPNCLIPTeacher', arch=TINY_CLIP))
    path = tmp_path / 'clip.pt'
    state = random_teacher.visual.state_dict()
    torch.save({'visual.' + k: v for k, v in state.items()}, path)
    return path, state


def test_clip_teacher_input_size_resamples_the_table_as_the_reference(
        tmp_path):
    path, state = _saved_tower(tmp_path)
    teacher = MODELS.build(dict(type='iTPNCLIPTeacher', checkpoint=str(path),
                                input_size=24, reference_input_scaling=False))
    # itpn_clip/clip/model.py:283-302: cls row kept, the 4 x 4 patch table
    # resampled bicubic with scale factor (3 + 0.1) / 4 to 3 x 3
    pos = state['positional_embedding']
    grid = pos[1:].reshape(1, 4, 4, 64).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, scale_factor=(3.1 / 4, 3.1 / 4),
                         mode='bicubic')
    expected = torch.cat([pos[:1], grid.permute(0, 2, 3, 1).reshape(9, 64)])
    torch.testing.assert_close(teacher.visual.positional_embedding, expected)
    assert not torch.allclose(expected[1:], pos[1:10])  # really resampled

    # the student's 32 px image reaches the tower resized to 24 px
    seen = {}
    teacher.visual.register_forward_pre_hook(
        lambda m, args: seen.update(x=args[0]))
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    img01 = torch.rand(2, 3, 32, 32)
    out = teacher((img01 * 255 - mean) / std)
    assert out.shape == (2, 9, 24)
    resized = F.interpolate(img01, size=(24, 24), mode='bicubic',
                            antialias=True).clamp(0, 1)
    clip_mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(
        1, 3, 1, 1)
    clip_std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(
        1, 3, 1, 1)
    torch.testing.assert_close(seen['x'], (resized - clip_mean) / clip_std,
                               rtol=1e-4, atol=1e-4)

    # without input_size: the image as it is, the stored table
    plain = MODELS.build(dict(type='iTPNCLIPTeacher', checkpoint=str(path)))
    torch.testing.assert_close(plain.visual.positional_embedding, pos)
    assert plain(torch.randn(1, 3, 32, 32)).shape == (1, 16, 24)


def test_clip_teacher_rejects_a_checkpoint_of_another_shape(tmp_path):
    path, _ = _saved_tower(tmp_path)
    other = dict(TINY_CLIP, output_dim=32)
    with pytest.raises(ValueError, match='config expects'):
        MODELS.build(dict(type='iTPNCLIPTeacher', checkpoint=str(path),
                          arch=other))
    with pytest.raises(ValueError, match='multiple of'):
        MODELS.build(dict(type='iTPNCLIPTeacher', arch=TINY_CLIP,
                          input_size=30))


TINY_ARCH = dict(embed_dims=64, depths=[1, 1, 2], num_heads=2)


def test_layer_scale_switch():
    """``layer_scale_init_value``: 0 (default) no scales; > 0 a per-channel
    scale on every residual branch, initialised to the value: gamma_1 on
    the attention branch (main blocks only), gamma_2 on every MLP branch
    (itpn_clip/modeling_finetune.py:101-118)."""
    off = MODELS.build(dict(type='iTPNBackbone', arch=TINY_ARCH, img_size=32,
                            patch_size=8))
    assert not [n for n, _ in off.named_parameters() if 'gamma' in n]
    on = MODELS.build(dict(type='iTPNBackbone', arch=TINY_ARCH, img_size=32,
                           patch_size=8, layer_scale_init_value=0.1))
    blocks = [b for b in on.blocks if hasattr(b, 'gamma_2')]
    assert len(blocks) == 4
    for blk in blocks:
        torch.testing.assert_close(blk.gamma_2,
                                   torch.full_like(blk.gamma_2, 0.1))
        if blk.attn is None:  # stage-1 / stage-2 MLP block
            assert blk.gamma_1 is None
        else:
            torch.testing.assert_close(blk.gamma_1,
                                       torch.full_like(blk.gamma_1, 0.1))
    # the scale multiplies the MLP branch: x + g * mlp(norm2(x))
    blk = on.blocks[0]
    blk.eval()
    with torch.no_grad():
        blk.gamma_2.copy_(torch.linspace(-1, 1, blk.gamma_2.numel()))
        x = torch.randn(2, 5, 16, 16)
        torch.testing.assert_close(
            blk(x), x + blk.gamma_2 * blk.mlp(blk.norm2(x)))


def test_clip_finetuning_has_the_reference_layer_scales():
    """itpn_clip fine-tuning builds every block with layer scale 0.1
    (run_itpn_finetuning.py:54,307): 40 attention + 44 MLP scales for
    iTPN-L, as in the reference model's parameter names."""
    cfg, model, _ = build_meta(
        CLS + 'itpn-clip_hivit-large-p16_ft-50e_in1k.py')
    assert cfg.model.backbone.layer_scale_init_value == 0.1
    ref = official_shapes('itpn_large_clip_ft')
    for g in ('gamma_1', 'gamma_2'):
        ours = sorted(tuple(p.shape) for n, p in model.named_parameters()
                      if n.endswith(g))
        theirs = sorted(s for k, s in ref.items() if k.endswith(g))
        assert ours == theirs and ours
    # the pixel recipe has none (itpn_pixel/models/models_itpn.py)
    _, pixel, _ = build_meta(CLS + 'itpn_hivit-large-p16_ft-50e_in1k.py')
    assert not [n for n, _ in pixel.named_parameters() if 'gamma' in n]


def test_cascade_mask_rcnn_config_trains_and_predicts():
    """The Cascade config's model, narrowed (tiny HiViT, 32 channels, BN for
    SyncBN on one CPU process): one loss with every stage's terms, a
    backward pass reaching the backbone, and masks predicted."""
    import mmmim.models.detection  # noqa: F401 (the Portable* parts)
    from mmdet.registry import MODELS as DET_MODELS
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.structures import InstanceData

    cfg = Config.fromfile(osp.join(
        ROOT, DET, 'itpn_hivit-base-p16_pyramid_cascade-mask-rcnn_3x_coco.py'))
    m = cfg.model
    m.data_preprocessor.pad_size_divisor = 64
    m.backbone.update(arch=TINY_ARCH, img_size=64, init_cfg=None)
    m.neck.update(in_channels=64, fpn_dim=32, init_cfg=None)
    m.rpn_head.update(in_channels=32, feat_channels=32)
    roi = m.roi_head
    roi.bbox_roi_extractor.out_channels = 32
    roi.mask_roi_extractor.out_channels = 32
    for head in roi.bbox_head:
        head.update(in_channels=32, conv_out_channels=32, fc_out_channels=32,
                    num_classes=2, norm_cfg=dict(type='BN'))
    roi.mask_head.update(num_convs=1, in_channels=32, conv_out_channels=32,
                         num_classes=2)
    m.train_cfg.rpn_proposal.max_per_img = 64
    for stage in m.train_cfg.rcnn:
        stage.sampler.num = 16
    m.test_cfg.rpn.max_per_img = 32
    m.test_cfg.rcnn.score_thr = 0.

    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmdet'):
        det = DET_MODELS.build(m)
    det.init_weights()
    img = torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)
    sample = DetDataSample(metainfo=dict(img_shape=(64, 64),
                                         ori_shape=(64, 64),
                                         pad_shape=(64, 64),
                                         scale_factor=(1., 1.)))
    gt = InstanceData()
    gt.bboxes = torch.tensor([[8., 8., 40., 44.]])
    gt.labels = torch.tensor([1])
    mask = torch.zeros(1, 64, 64, dtype=torch.uint8)
    mask[0, 8:44, 8:40] = 1
    gt.masks = BitmapMasks(mask.numpy(), 64, 64)
    sample.gt_instances = gt
    det.train()
    data = det.data_preprocessor(dict(inputs=[img], data_samples=[sample]),
                                 True)
    losses = det.loss(data['inputs'], data['data_samples'])
    for s in range(3):
        for term in ('loss_cls', 'loss_bbox', 'loss_mask'):
            assert f's{s}.{term}' in losses
    total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(v)
                for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert det.backbone.blocks[0].mlp.fc1.weight.grad is not None
    det.eval()
    with torch.no_grad():
        data = det.data_preprocessor(
            dict(inputs=[img], data_samples=[sample]), False)
        pred = det.predict(data['inputs'], data['data_samples'])[0]
    assert len(pred.pred_instances) > 0
    assert pred.pred_instances.masks.shape[-2:] == (64, 64)
