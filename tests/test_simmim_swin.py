"""SimMIM with a Swin encoder: reference size, loss, and the window-size
change from pre-training (192 px, window 6) to fine-tuning (224, window 7)."""
import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmmim.models.backbones.swin import resize_rel_pos_bias_geometric

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PRETRAIN = osp.join(ROOT, 'configs/simmim/simmim-swin-base_pixel_800e.py')
FINETUNE = osp.join(
    ROOT, 'configs/benchmarks/classification/simmim_swin-base_ft-100e_in1k.py')
TINY_SWIN = dict(embed_dims=16, depths=[1, 1], num_heads=[1, 2])


def reference_to_mmpretrain(name: str) -> str:
    """SimMIM's Swin parameter names -> mmmim's (shape comparison)."""
    name = name.replace('encoder.', 'backbone.', 1)
    name = name.replace('decoder.0', 'neck.decoder.0')
    name = name.replace('patch_embed.proj', 'patch_embed.projection')
    name = name.replace('backbone.norm.', 'backbone.norm3.')
    name = re.sub(r'layers\.(\d+)\.', r'stages.\1.', name)
    name = name.replace('attn.', 'attn.w_msa.')
    name = name.replace('mlp.fc1', 'ffn.layers.0.0')
    name = name.replace('mlp.fc2', 'ffn.layers.1')
    return name


def test_swin_base_has_the_reference_parameters():
    cfg = Config.fromfile(PRETRAIN)
    # mmpretrain's Swin calls .item() while building: not on the meta device
    model = MODELS.build(cfg.model)
    ours = {k: tuple(v.shape) for k, v in model.named_parameters()}
    ref = {}
    with open(osp.join(ROOT, 'tests/data/simmim_swin_base_keys.txt')) as f:
        for line in f:
            if line.startswith('#'):
                continue
            name, shape = line.split(' ', 1)
            ref[reference_to_mmpretrain(name)] = tuple(eval(shape))
    assert ours == ref
    assert sum(int(np.prod(s)) for s in ours.values()) == 89_874_104
    assert model.backbone.patch_resolution == (48, 48)


def tiny_swin_simmim(img_size=32, window=2):
    model = MODELS.build(dict(
        type='SimMIMPretrainer',
        backbone=dict(type='SimMIMSwinTransformer', arch=TINY_SWIN,
                      img_size=img_size, drop_path_rate=0., out_indices=(1, ),
                      stage_cfgs=dict(block_cfgs=dict(window_size=window))),
        neck=dict(type='SimMIMLinearDecoder', in_channels=32,
                  encoder_stride=8),
        head=dict(type='SimMIMHead', patch_size=4,
                  loss=dict(type='MaskedPixelL1Loss'))))
    model.init_weights()
    return model


def test_swin_simmim_loss_matches_formula():
    model = tiny_swin_simmim().eval()
    img = torch.randn(2, 3, 32, 32)
    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(2, 8, 8, generator=g) < 0.5).to(torch.uint8)
    samples = []
    for m in mask:
        s = DataSample()
        s.set_field(m, 'mask')
        samples.append(s)
    loss = model.loss(img, samples)['loss']
    feat = model.backbone(img, mask)[-1]
    rec = model.neck(feat)
    assert rec.shape == img.shape
    m = mask.repeat_interleave(4, 1).repeat_interleave(4, 2)[:, None].float()
    expected = ((rec - img).abs() * m).sum() / (m.sum() + 1e-5) / 3
    torch.testing.assert_close(loss, expected)
    # the unmasked encoder serves the representation evaluation
    feats = model.extract_feat(img)
    assert feats[-1].shape == (2, 32, 4, 4)


def test_swin_stride_mismatch_fails_at_build():
    with pytest.raises(ValueError, match='encoder_stride=4 but the backbone '
                       'stride is 8'):
        MODELS.build(dict(
            type='SimMIMPretrainer',
            backbone=dict(type='SimMIMSwinTransformer', arch=TINY_SWIN,
                          img_size=32, out_indices=(1, )),
            neck=dict(type='SimMIMLinearDecoder', in_channels=32,
                      encoder_stride=4),
            head=dict(type='SimMIMHead', patch_size=4,
                      loss=dict(type='MaskedPixelL1Loss'))))


def test_geometric_resize_keeps_the_shared_offsets():
    g = torch.Generator().manual_seed(0)
    table = torch.randn(11 * 11, 3, generator=g)  # window 6
    out = resize_rel_pos_bias_geometric(table, 13)  # window 7
    assert out.shape == (13 * 13, 3)
    src = table.view(11, 11, 3)
    dst = out.view(13, 13, 3)
    # offsets 0 and +-1 sit on source nodes (the geometric distances start
    # at 1): the spline goes through the source values there
    for i in (-1, 0, 1):
        for j in (-1, 0, 1):
            torch.testing.assert_close(dst[6 + i, 6 + j], src[5 + i, 5 + j],
                                       atol=1e-5, rtol=0)
    assert torch.equal(resize_rel_pos_bias_geometric(table, 11), table)
    # the outermost source offsets (+-5) are stretched out to +-6 (the
    # geometric distances end at dst_size // 2): the corners keep the
    # source corners' values
    torch.testing.assert_close(dst[0, 0], src[0, 0], atol=1e-3, rtol=0)
    torch.testing.assert_close(dst[12, 12], src[10, 10], atol=1e-3, rtol=0)


def test_finetune_config_loads_pretraining_with_every_key(tmp_path):
    pre = tiny_swin_simmim(img_size=32, window=4)
    ckpt = str(tmp_path / 'pre.pth')
    torch.save({'state_dict': pre.state_dict()}, ckpt)
    cfg = Config.fromfile(FINETUNE)
    cfg.model.backbone.update(arch=TINY_SWIN, img_size=40, out_indices=(1, ),
                              stage_cfgs=dict(block_cfgs=dict(window_size=5)))
    cfg.model.backbone.init_cfg.checkpoint = ckpt
    cfg.model.head.update(in_channels=32, num_classes=10)
    cfg.model.train_cfg = None
    model = MODELS.build(cfg.model)
    model.init_weights()
    backbone = model.backbone
    report = backbone.pretrained_load_report
    assert report.missing == [] and report.unexpected == []
    assert report.mismatched == []
    pre_keys = {k[len('backbone.'):]: v for k, v in pre.state_dict().items()
                if k.startswith('backbone.')}
    own = backbone.state_dict()
    tables = [k for k in own if k.endswith('relative_position_bias_table')]
    assert len(tables) == 2
    for key, value in pre_keys.items():
        if key == 'mask_token':
            assert key not in own  # pre-training only, dropped
        elif key.endswith('relative_position_index'):
            assert own[key].shape == (25, 25)  # rebuilt for window 5
        elif key.endswith('relative_position_bias_table'):
            assert value.shape[0] == 49 and own[key].shape[0] == 81
            torch.testing.assert_close(
                own[key], resize_rel_pos_bias_geometric(value, 9))
        else:
            assert torch.equal(own[key], value), key
    # every fine-tuning parameter came from the checkpoint
    assert set(k for k in own if not k.endswith('relative_position_index')) \
        <= set(pre_keys)
    logits = model(torch.randn(2, 3, 40, 40), mode='tensor')
    assert logits.shape == (2, 10)


def test_pretraining_config_resolves_and_builds():
    cfg = Config.fromfile(PRETRAIN)
    mask = [t for t in cfg.train_pipeline
            if t['type'] == 'RandomMaskGenerator'][0]
    gen = __import__('mmpretrain').registry.TRANSFORMS.build(mask)
    assert gen.grid == (48, 48) and gen.num_masked_units == 22
    assert gen.num_masked == 22 * 64
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(4e-4)
