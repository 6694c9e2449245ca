"""iTPN backbone, pyramid neck and pixel pre-training (tiny models, CPU)."""
import copy

import pytest
import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

TINY_ARCH = dict(embed_dims=64, depths=[1, 1, 2], num_heads=2)


def tiny_pixel_cfg(img_size=32, patch_size=8):
    n = (img_size // patch_size)**2
    return dict(
        type='iTPNPretrainer',
        backbone=dict(type='iTPNBackbone', arch=TINY_ARCH, img_size=img_size,
                      patch_size=patch_size),
        neck=dict(type='iTPNPyramidNeck', in_channels=64, fpn_dim=32,
                  fpn_depth=1),
        decoder=dict(type='iTPNPixelDecoder', num_patches=n,
                     patch_size=patch_size, fpn_dim=32, embed_dim=64, depth=1,
                     num_heads=2),
        head=dict(type='iTPNPixelHead', patch_size=patch_size))


def base_pixel_cfg():
    return dict(
        type='iTPNPretrainer',
        backbone=dict(type='iTPNBackbone', arch='base'),
        neck=dict(type='iTPNPyramidNeck', in_channels=512, fpn_dim=256,
                  fpn_depth=2),
        decoder=dict(type='iTPNPixelDecoder', depth=8),
        head=dict(type='iTPNPixelHead'))


def numel(module):
    return sum(p.numel() for p in module.parameters())


def test_base_pixel_sizes_match_reference():
    with torch.device('meta'):
        model = MODELS.build(base_pixel_cfg())
    # exact sums of official_keys/itpn_base_pixel_dec512d8b.txt
    assert numel(model.backbone) == 77_904_000  # 77.9 M
    assert numel(model.neck) == 4_700_160  # 4.70 M
    assert numel(model) == 108_493_344  # 108.5 M
    assert len(model.decoder.decoder_blocks) == 8
    assert sum(1 for b in model.backbone.blocks
               if b.__class__.__name__ == 'iTPNBlock') == 30


def test_config_file_builds_base_model():
    from mmengine.config import Config
    cfg = Config.fromfile('configs/itpn/itpn-base_pixel_800e.py')
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert numel(model) == 108_493_344
    assert model.head.norm_pix


def test_pixel_loss_equals_masked_normalised_mse():
    model = MODELS.build(tiny_pixel_cfg())
    img = torch.randn(2, 3, 32, 32)
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[0, [0, 3, 5, 6, 9, 10, 12, 15]] = True
    mask[1, [1, 2, 4, 7, 8, 11, 13, 14]] = True
    samples = []
    for m in mask:
        s = DataSample()
        s.set_field(m.reshape(4, 4), 'mask')
        samples.append(s)
    loss = model.loss(img, samples)['loss']

    pred = model.predict_pixels(img, mask)
    # patchify: (B, L, p*p*3), pixels ordered (row, col, channel)
    p = 8
    t = img.reshape(2, 3, 4, p, 4, p).permute(0, 2, 4, 3, 5, 1)
    t = t.reshape(2, 16, p * p * 3)
    mean = t.mean(-1, keepdim=True)
    var = ((t - mean)**2).sum(-1, keepdim=True) / (t.shape[-1] - 1)
    t = (t - mean) / torch.sqrt(var + 1e-6)
    per_patch = ((pred - t)**2).mean(-1)
    expected = (per_patch * mask).sum() / mask.sum()
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


def test_random_mask_without_pipeline_mask():
    model = MODELS.build(tiny_pixel_cfg())
    mask = model.get_mask(torch.zeros(3, 3, 32, 32), None)
    assert mask.shape == (3, 16)
    assert mask.sum(1).tolist() == [12, 12, 12]  # 16 - int(16 * 0.25)


def test_drop_mode_stem_features_match_unmasked():
    """Dropping patches before the stem keeps the MLP stages per patch."""
    bb = MODELS.build(tiny_pixel_cfg()['backbone']).eval()
    img = torch.randn(2, 3, 32, 32)
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[:, :10] = True
    f4, f8, f16 = bb(img, mask)
    assert f4.shape == (2, 6, 4, 4, 16)
    assert f8.shape == (2, 6, 2, 2, 32)
    assert f16.shape == (2, 6, 64)
    full = bb.forward_tokens(img)
    torch.testing.assert_close(f4, full[0][:, 10:])
    torch.testing.assert_close(f8, full[1][:, 10:])


def test_token_mode_uses_mask_token_after_stem():
    cfg = tiny_pixel_cfg()['backbone']
    bb = MODELS.build(dict(cfg, mask_mode='token')).eval()
    img = torch.randn(1, 3, 32, 32)
    mask = torch.zeros(1, 16, dtype=torch.bool)
    mask[0, 3] = True
    f4, f8, f16, early = bb.forward_tokens(img, mask, hidden_after=(1, ))
    full = bb.forward_tokens(img)
    assert f16.shape == (1, 16, 64) and early.shape == (1, 16, 64)
    # quirk of the reference: the stem sees the unmasked image
    torch.testing.assert_close(f4, full[0])
    assert not torch.allclose(f16, full[2])
    bb2 = MODELS.build(dict(cfg, mask_mode='stem_token')).eval()
    g4 = bb2.forward_tokens(img, mask)[0]
    assert not torch.allclose(g4[:, 3], bb2.forward_tokens(img)[0][:, 3])
    torch.testing.assert_close(g4[:, 4:], bb2.forward_tokens(img)[0][:, 4:])


def test_dense_outputs_base_224_on_meta():
    with torch.device('meta'):
        bb = MODELS.build(dict(type='iTPNBackbone', arch='base'))
        outs = bb(torch.empty(2, 3, 224, 224))
    assert [tuple(o.shape) for o in outs] == [(2, 128, 56, 56),
                                              (2, 256, 28, 28),
                                              (2, 512, 14, 14)]


def test_dense_outputs_other_size_with_rel_pos_bias():
    bb = MODELS.build(
        dict(type='iTPNBackbone', arch=TINY_ARCH, img_size=32, patch_size=16,
             use_rel_pos_bias=True, out_indices=(0, 1, 2)))
    outs = bb(torch.randn(1, 3, 48, 80))  # 3 x 5 patches, tables resized
    assert [tuple(o.shape) for o in outs] == [(1, 16, 12, 20), (1, 32, 6, 10),
                                              (1, 64, 3, 5)]
    assert bb.get_layer_depth('blocks.4.attn.relative_position_bias_table') \
        == (3, 6)


def test_checkpoint_tables_resized_on_load():
    src = MODELS.build(
        dict(type='iTPNBackbone', arch=TINY_ARCH, img_size=32, patch_size=16,
             use_rel_pos_bias=True))
    dst = MODELS.build(
        dict(type='iTPNBackbone', arch=TINY_ARCH, img_size=64, patch_size=16,
             use_rel_pos_bias=True))
    sd = copy.deepcopy(src.state_dict())
    assert sd['pos_embed'].shape == (1, 4, 64)
    assert sd['blocks.4.attn.relative_position_bias_table'].shape == (9, 2)
    res = dst.load_state_dict(sd, strict=True)
    assert not res.missing_keys and not res.unexpected_keys
    assert dst.pos_embed.shape == (1, 16, 64)
    assert dst.blocks[4].attn.relative_position_bias_table.shape == (49, 2)


def test_layer_ids_over_30_blocks():
    with torch.device('meta'):
        bb = MODELS.build(dict(type='iTPNBackbone', arch='base'))
    assert len(bb.blocks) == 32
    assert bb.get_layer_depth('pos_embed') == (0, 32)
    assert bb.get_layer_depth('patch_embed.proj.weight') == (0, 32)
    assert bb.get_layer_depth('blocks.0.mlp.fc1.weight') == (1, 32)
    assert bb.get_layer_depth('blocks.2.mlp.fc1.weight') == (3, 32)
    assert bb.get_layer_depth('blocks.3.reduction.weight') == (3, 32)  # merge
    assert bb.get_layer_depth('blocks.4.norm2.weight') == (4, 32)
    assert bb.get_layer_depth('blocks.7.norm.weight') == (6, 32)  # merge
    assert bb.get_layer_depth('blocks.8.attn.qkv.weight') == (7, 32)
    assert bb.get_layer_depth('blocks.31.mlp.fc2.bias') == (30, 32)
    assert bb.get_layer_depth('neck.x', prefix='backbone.') == (31, 32)
    assert bb.get_layer_depth('backbone.blocks.31.norm1.weight',
                              prefix='backbone.') == (30, 32)


def test_layer_decay_constructor_uses_layer_ids():
    from mmpretrain.engine.optimizers import \
        LearningRateDecayOptimWrapperConstructor as Ctor

    model = MODELS.build(
        dict(type='ImageClassifier',
             backbone=dict(type='iTPNBackbone', arch=TINY_ARCH, img_size=32,
                           patch_size=16, out_indices=(2, )),
             neck=dict(type='GlobalAveragePooling'),
             head=dict(type='LinearClsHead', num_classes=2, in_channels=64)))
    ctor = Ctor(
        dict(type='OptimWrapper',
             optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05)),
        dict(layer_decay_rate=0.5))
    opt = ctor(model).optimizer
    lrs = {}
    for g in opt.param_groups:
        lrs[g['param_name'] if 'param_name' in g else g['param_names'][0]] = \
            g['lr']
    # 4 blocks -> 6 layers; scale 0.5 ** (5 - id)
    assert lrs['backbone.patch_embed.proj.weight'] == pytest.approx(0.5**5)
    assert lrs['backbone.blocks.4.attn.qkv.weight'] == pytest.approx(0.5**2)
    assert lrs['backbone.blocks.5.attn.qkv.weight'] == pytest.approx(0.5)
    assert lrs['head.fc.weight'] == pytest.approx(1.0)


def test_frozen_stages():
    bb = MODELS.build(
        dict(type='iTPNBackbone', arch=TINY_ARCH, img_size=32, patch_size=16,
             frozen_stages=2, drop_rate=0.5))
    bb.train()
    frozen = {n for n, p in bb.named_parameters() if not p.requires_grad}
    # patch embed, stage 1 (blocks.0, merge blocks.1), stage 2 (blocks.2,
    # merge blocks.3) and the position table (added after stage 2)
    expected = {
        n for n, _ in bb.named_parameters()
        if n.startswith(('patch_embed', 'pos_embed', 'blocks.0.', 'blocks.1.',
                         'blocks.2.', 'blocks.3.'))
    }
    assert frozen == expected
    assert not bb.blocks[2].training and bb.blocks[4].training
    outs = bb(torch.randn(1, 3, 32, 32))
    outs[-1].sum().backward()
    assert bb.patch_embed.proj.weight.grad is None
    assert bb.blocks[4].attn.qkv.weight.grad is not None


def test_dense_neck_modes():
    neck_cfg = dict(type='iTPNPyramidNeck', in_channels=64, fpn_dim=32,
                    fpn_depth=1)
    bb = MODELS.build(
        dict(type='iTPNBackbone', arch=TINY_ARCH, img_size=64, patch_size=16))
    img = torch.randn(1, 3, 64, 64)
    maps = bb(img)
    fpn = MODELS.build(dict(neck_cfg, out_mode='fpn'))
    outs = fpn(maps)
    assert [tuple(o.shape) for o in outs] == [(1, 32, 16, 16), (1, 32, 8, 8),
                                              (1, 32, 4, 4), (1, 32, 2, 2),
                                              (1, 32, 1, 1)]
    torch.testing.assert_close(
        outs[3], torch.nn.functional.avg_pool2d(outs[2], 2))
    uper = MODELS.build(dict(neck_cfg, out_mode='uper'))
    uper.load_state_dict(fpn.state_dict(), strict=True)
    outs_u = uper(maps)
    assert [tuple(o.shape) for o in outs_u] == [(1, 48, 16, 16),
                                                (1, 64, 8, 8), (1, 96, 4, 4),
                                                (1, 96, 2, 2)]
    torch.testing.assert_close(outs_u[0][:, :32], outs[0])
    torch.testing.assert_close(outs_u[0][:, 32:], maps[0])
    torch.testing.assert_close(
        outs_u[3], torch.nn.functional.max_pool2d(outs_u[2], 2))
    # the dense neck computes exactly what the token-layout neck computes
    tok = MODELS.build(neck_cfg)
    tok.load_state_dict(fpn.state_dict(), strict=True)
    l16, l8, l4 = tok(bb.forward_tokens(img))
    assert l16.shape == (1, 16, 1, 1, 32)
    assert l8.shape == (1, 16, 2, 2, 32)
    assert l4.shape == (1, 16, 4, 4, 32)
    torch.testing.assert_close(bb._to_nchw(l4, (4, 4)), outs[0])
    torch.testing.assert_close(bb._to_nchw(l8, (4, 4)), outs[1])
    torch.testing.assert_close(bb._to_nchw(l16, (4, 4)), outs[2])


def test_drop_path_linear_over_all_30_blocks():
    with torch.device('meta'):
        bb = MODELS.build(
            dict(type='iTPNBackbone', arch='base', drop_path_rate=0.29))
    rates = [
        b.drop_path.drop_prob if hasattr(b.drop_path, 'drop_prob') else 0.
        for b in bb.blocks if b.__class__.__name__ == 'iTPNBlock'
    ]
    assert len(rates) == 30
    assert rates == pytest.approx([0.01 * i for i in range(30)])


def test_drop_mode_with_rel_pos_bias_gathers_the_visible_bias():
    bb = MODELS.build(
        dict(type='iTPNBackbone', arch=TINY_ARCH, img_size=32, patch_size=8,
             use_rel_pos_bias=True)).eval()
    img = torch.randn(2, 3, 32, 32)
    # nothing masked: the gathered path must equal the unmasked forward
    none = torch.zeros(2, 16, dtype=torch.bool)
    torch.testing.assert_close(bb(img, none)[2], bb.forward_tokens(img)[2])
    # the bias of visible tokens is the sub-matrix of the full one
    keep = torch.tensor([[0, 5, 15], [1, 2, 3]])
    blk = bb.main_blocks[0]
    full = bb._rel_bias(blk, (4, 4), None)
    sub = bb._rel_bias(blk, (4, 4), keep)
    torch.testing.assert_close(sub[0], full[:, [0, 5, 15]][:, :, [0, 5, 15]])
    torch.testing.assert_close(sub[1], full[:, [1, 2, 3]][:, :, [1, 2, 3]])


@pytest.mark.parametrize('reference_init', [True, False])
def test_reference_initialisation(reference_init):
    # the reference leaves the patch conv at PyTorch's default
    # (kaiming-uniform, bound 1 / sqrt(fan_in)) and the bias tables at zero
    model = MODELS.build(dict(type='iTPNBackbone', arch=TINY_ARCH,
                              img_size=32, patch_size=8,
                              use_rel_pos_bias=True,
                              reference_init=reference_init))
    w = model.patch_embed.proj.weight.detach()
    fan_in = w[0].numel()
    default_bound = fan_in**-.5
    xavier_bound = (6 / (fan_in + w.shape[0]))**.5
    table = model.main_blocks[0].attn.relative_position_bias_table
    if reference_init:
        assert w.abs().max() <= default_bound
        assert w.abs().max() > 0.9 * default_bound
        assert not table.any()
    else:
        assert w.abs().max() > default_bound
        assert w.abs().max() <= xavier_bound
        assert table.std() > 0.01
