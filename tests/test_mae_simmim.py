"""MAE / SimMIM: losses against hand-written formulas, masks used exactly,
reference architecture sizes, dense outputs for transfer."""
import math
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from .conftest import official_shapes

ROOT = Path(__file__).resolve().parents[1]
TINY_ARCH = dict(embed_dims=32, num_layers=2, num_heads=2,
                 feedforward_channels=64)


def reference_param_count(name):
    """Number of parameters listed in an official_keys file (buffers out)."""
    return sum(math.prod(shape) for key, shape in official_shapes(name).items()
               if 'relative_position_index' not in key)


def tiny_mae(norm_pix=True):
    model = MODELS.build(
        dict(
            type='MAEPretrainer',
            backbone=dict(type='MaskedViT', arch=TINY_ARCH, img_size=32,
                          patch_size=8),
            neck=dict(type='MAEDecoder', num_patches=16, patch_size=8,
                      embed_dim=32, decoder_embed_dim=16, decoder_depth=1,
                      decoder_num_heads=2),
            head=dict(type='MAEPretrainHead', norm_pix=norm_pix,
                      patch_size=8,
                      loss=dict(type='PixelReconstructionLoss',
                                criterion='L2'))))
    model.init_weights()
    return model


def tiny_simmim():
    model = MODELS.build(
        dict(
            type='SimMIMPretrainer',
            backbone=dict(type='SimMIMViT', arch=TINY_ARCH, img_size=32,
                          patch_size=8, drop_path_rate=0.),
            neck=dict(type='SimMIMLinearDecoder', in_channels=32,
                      encoder_stride=8),
            head=dict(type='SimMIMHead', patch_size=8,
                      loss=dict(type='MaskedPixelL1Loss'))))
    model.init_weights()
    return model


def fixed_mask(batch, num_patches, num_masked, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(batch, num_patches, dtype=torch.bool)
    for b in range(batch):
        mask[b, torch.randperm(num_patches, generator=g)[:num_masked]] = True
    return mask


def samples_with(mask, grid):
    samples = []
    for m in mask:
        sample = DataSample()
        sample.set_field(m.view(grid, grid).to(torch.uint8), 'mask')
        samples.append(sample)
    return samples


def patch_pixels(img, p):
    """Patch (i, j) of each image flattened as (row, col, channel)."""
    B, C, H, W = img.shape
    out = []
    for i in range(H // p):
        for j in range(W // p):
            patch = img[:, :, i * p:(i + 1) * p, j * p:(j + 1) * p]
            out.append(patch.permute(0, 2, 3, 1).reshape(B, -1))
    return torch.stack(out, dim=1)


@pytest.mark.parametrize('norm_pix', [True, False])
def test_mae_loss_matches_formula(norm_pix):
    model = tiny_mae(norm_pix)
    img = torch.randn(3, 3, 32, 32)
    mask = fixed_mask(3, 16, 12)
    loss = model.loss(img, samples_with(mask, 4))['loss']

    pred = model.predict_patches(img, mask)
    target = patch_pixels(img, 8)
    if norm_pix:
        mean = target.mean(-1, keepdim=True)
        var = ((target - mean)**2).sum(-1, keepdim=True) / (target.shape[-1] - 1)
        target = (target - mean) / torch.sqrt(var + 1e-6)
    per_patch = ((pred - target)**2).mean(-1)
    expected = (per_patch * mask).sum() / mask.sum()
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


def test_mae_encoder_sees_only_visible_patches():
    model = tiny_mae().eval()
    img = torch.randn(2, 3, 32, 32)
    mask = fixed_mask(2, 16, 12)
    latent, ids_restore = model.backbone(img, mask)
    assert latent.shape == (2, 1 + 4, 32)
    # changing masked pixels changes nothing the encoder computes
    pix_mask = mask.view(2, 1, 4, 1, 4, 1).expand(2, 3, 4, 8, 4, 8)
    noisy = img + 5 * torch.randn_like(img) * pix_mask.reshape(2, 3, 32, 32)
    latent2, _ = model.backbone(noisy, mask)
    torch.testing.assert_close(latent, latent2)
    # ids_restore puts [visible, masked] back into raster order
    order = torch.cat([torch.nonzero(~mask[0]).flatten(),
                       torch.nonzero(mask[0]).flatten()])
    assert torch.equal(order[ids_restore[0]], torch.arange(16))


def test_mae_uses_pipeline_mask_and_draws_random_one_otherwise():
    model = tiny_mae()
    img = torch.randn(2, 3, 32, 32)
    mask = fixed_mask(2, 16, 12)
    assert torch.equal(model.get_mask(img, samples_with(mask, 4)), mask)
    drawn = model.get_mask(img, [DataSample(), DataSample()])
    assert drawn.shape == (2, 16)
    assert drawn.sum(1).tolist() == [16 - int(16 * 0.25)] * 2
    with pytest.raises(ValueError, match='patches'):
        model.get_mask(img, samples_with(fixed_mask(2, 64, 48), 8))


def test_simmim_loss_matches_formula():
    model = tiny_simmim()
    img = torch.randn(2, 3, 32, 32)
    mask = fixed_mask(2, 16, 10)
    loss = model.loss(img, samples_with(mask, 4))['loss']
    pred = model.predict_pixels(img, mask)
    pix_mask = mask.view(2, 4, 4).repeat_interleave(8, 1).repeat_interleave(
        8, 2)[:, None].float()
    expected = ((img - pred).abs() * pix_mask).sum() / (pix_mask.sum() +
                                                         1e-5) / 3
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


def test_simmim_mask_token_replaces_masked_patches():
    model = tiny_simmim().eval()
    img = torch.randn(2, 3, 32, 32)
    mask = fixed_mask(2, 16, 10)
    pix_mask = mask.view(2, 1, 4, 1, 4, 1).expand(2, 3, 4, 8, 4, 8)
    noisy = img + 5 * torch.randn_like(img) * pix_mask.reshape(2, 3, 32, 32)
    out = model.predict_pixels(img, mask)
    torch.testing.assert_close(out, model.predict_pixels(noisy, mask))
    assert not torch.allclose(out, model.predict_pixels(img, ~mask))


def test_simmim_init_is_truncated_at_one_sigma_and_rescaled():
    model = tiny_simmim()
    qkv = model.backbone.layers[0].attn.qkv.weight
    assert qkv.abs().max() <= 0.02 + 1e-7
    proj2 = model.backbone.layers[1].attn.proj.weight
    assert proj2.abs().max() <= 0.02 / math.sqrt(4) + 1e-7
    assert proj2.abs().max() > 0.02 / math.sqrt(4) * 0.9


@pytest.mark.parametrize('config,reference', [
    ('configs/mae/mae-vit-base_pixel_1600e.py', 'mae_vit_base_patch16_full'),
    ('configs/simmim/simmim-vit-base_pixel_800e.py',
     'simmim_vit_base_patch16'),
])
def test_base_configs_match_reference_sizes(config, reference):
    cfg = Config.fromfile(str(ROOT / config))
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    count = sum(p.numel() for p in model.parameters())
    assert count == reference_param_count(reference)


def test_masked_vit_dense_outputs_and_pos_interpolation():
    cfg = dict(type='MaskedViT', arch='base', img_size=224, patch_size=16,
               out_indices=(3, 7, 11))
    with torch.device('meta'):
        vit = MODELS.build(cfg)
        outs = vit(torch.empty(2, 3, 224, 224))
        assert [o.shape for o in outs] == [(2, 768, 14, 14)] * 3
        outs = vit(torch.empty(1, 3, 320, 256))
        assert outs[-1].shape == (1, 768, 20, 16)
    tiny = MODELS.build(dict(type='MaskedViT', arch=TINY_ARCH, img_size=32,
                             patch_size=8))
    tiny.init_weights()
    out = tiny(torch.randn(1, 3, 48, 48))[-1]
    assert out.shape == (1, 32, 6, 6) and torch.isfinite(out).all()
    simmim = tiny_simmim().backbone
    out = simmim(torch.randn(1, 3, 32, 32))[-1]
    assert out.shape == (1, 32, 4, 4) and torch.isfinite(out).all()


def test_masked_vit_rejects_bad_sizes_and_modes():
    with pytest.raises(ValueError, match='divisible'):
        MODELS.build(dict(type='MaskedViT', arch=TINY_ARCH, img_size=30,
                          patch_size=8))
    with pytest.raises(ValueError, match='mask_mode'):
        MODELS.build(dict(type='MaskedViT', arch=TINY_ARCH, img_size=32,
                          patch_size=8, mask_mode='zero'))


def test_masked_vit_layer_ids_for_layer_decay():
    vit = MODELS.build(dict(type='MaskedViT', arch=TINY_ARCH, img_size=32,
                            patch_size=8))
    depth = {name: vit.get_layer_depth(name)[0]
             for name, _ in vit.named_parameters()}
    assert depth['cls_token'] == 0 and depth['pos_embed'] == 0
    assert depth['patch_embed.projection.weight'] == 0
    assert depth['layers.0.attn.qkv.weight'] == 1
    assert depth['layers.1.ffn.layers.1.weight'] == 2
    assert depth['ln1.weight'] == 3


def test_mismatched_decoder_and_patch_sizes_fail_at_build():
    mae = dict(
        type='MAEPretrainer',
        backbone=dict(type='MaskedViT', arch=TINY_ARCH, img_size=32,
                      patch_size=8),
        neck=dict(type='MAEDecoder', num_patches=64, patch_size=4,
                  embed_dim=32, decoder_embed_dim=16, decoder_depth=1,
                  decoder_num_heads=2),
        head=dict(type='MAEPretrainHead', patch_size=4,
                  loss=dict(type='PixelReconstructionLoss', criterion='L2')))
    with pytest.raises(ValueError, match='num_patches=64.*16 patches'):
        MODELS.build(mae)
    simmim = dict(
        type='SimMIMPretrainer',
        backbone=dict(type='SimMIMViT', arch=TINY_ARCH, img_size=32,
                      patch_size=8),
        neck=dict(type='SimMIMLinearDecoder', in_channels=32,
                  encoder_stride=16),
        head=dict(type='SimMIMHead', patch_size=8,
                  loss=dict(type='MaskedPixelL1Loss')))
    with pytest.raises(ValueError, match='encoder_stride'):
        MODELS.build(simmim)


@pytest.mark.parametrize('own_table', [False, True])
def test_fused_beit_attention_equals_mmpretrain(own_table):
    from mmpretrain.models.utils import BEiTAttention

    from mmmim.models.backbones.simmim_vit import FusedBEiTAttention
    attn = BEiTAttention(embed_dims=32, num_heads=2, window_size=(4, 4),
                         use_rel_pos_bias=own_table).eval()
    for p in attn.parameters():
        torch.nn.init.normal_(p, std=0.3)
    fused = FusedBEiTAttention(embed_dims=32, num_heads=2, window_size=(4, 4),
                               use_rel_pos_bias=own_table).eval()
    fused.load_state_dict(attn.state_dict())
    x = torch.randn(2, 17, 32)
    shared = torch.randn(2, 17, 17)
    torch.testing.assert_close(fused(x, shared), attn(x, shared),
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fused(x), attn(x), rtol=1e-5, atol=1e-5)
