"""The MAE / SimMIM / ViT design switches of the ablations: masks, encoder
with mask tokens, corrupted patches, prediction heads, targets through the
algorithms, partial fine-tuning."""
import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmpretrain.registry import MODELS, TRANSFORMS
from mmpretrain.structures import DataSample

TINY_ARCH = dict(embed_dims=32, num_layers=2, num_heads=2,
                 feedforward_channels=64)


def samples_with(mask):
    out = []
    for m in mask:
        s = DataSample()
        s.set_field(m.to(torch.uint8), 'mask')
        out.append(s)
    return out


# ------------------------------------------------------------------ masks
def test_grid_mask_keeps_one_of_four():
    gen = TRANSFORMS.build(dict(type='GridMaskGenerator', input_size=32,
                                patch_size=4, stride=2))
    mask = gen({})['mask']
    assert mask.shape == (8, 8) and mask.sum() == 48 == gen.num_masked
    assert (mask[0::2, 0::2] == 0).all() and mask[1::2].all() \
        and mask[:, 1::2].all()
    np.random.seed(0)
    gen = TRANSFORMS.build(dict(type='GridMaskGenerator', input_size=48,
                                patch_size=4, stride=3, random_offset=True))
    offsets = set()
    for _ in range(30):
        m = gen({})['mask']
        assert m.sum() == 144 - 16
        visible = np.argwhere(m == 0)
        assert len({(r % 3, c % 3) for r, c in visible}) == 1
        offsets.add(tuple(visible[0] % 3))
    assert len(offsets) > 3
    with pytest.raises(ValueError, match='not divisible by stride'):
        TRANSFORMS.build(dict(type='GridMaskGenerator', input_size=28,
                              patch_size=4, stride=2))


def test_square_mask_centred_and_random():
    # SimMIM's square ratios at 192 px / patch 4 (48 x 48 patches):
    # 0.11, 0.25, 0.44 -> centred 16, 24, 32-patch (64, 96, 128 px) squares
    for ratio, side in ((0.11, 16), (0.25, 24), (0.44, 32)):
        gen = TRANSFORMS.build(dict(type='SquareMaskGenerator',
                                    input_size=192, patch_size=4,
                                    mask_ratio=ratio))
        mask = gen({})['mask']
        assert gen.side == side and mask.sum() == side * side
        rows, cols = np.nonzero(mask)
        top = (48 - side) // 2
        assert rows.min() == top and rows.max() == top + side - 1
        assert cols.min() == top and cols.max() == top + side - 1
    np.random.seed(1)
    gen = TRANSFORMS.build(dict(type='SquareMaskGenerator', input_size=32,
                                patch_size=4, mask_ratio=0.25,
                                random_position=True))
    corners = set()
    for _ in range(20):
        m = gen({})['mask']
        assert m.sum() == 16
        rows, cols = np.nonzero(m)
        assert rows.max() - rows.min() == 3 and cols.max() - cols.min() == 3
        corners.add((rows.min(), cols.min()))
    assert len(corners) > 5
    with pytest.raises(ValueError, match='does not fit'):
        TRANSFORMS.build(dict(type='SquareMaskGenerator', input_size=32,
                              patch_size=4, mask_ratio=0.99))


@pytest.mark.parametrize('mask_patch_size,ratio', [(4, 0.3), (8, 0.6),
                                                   (16, 0.5), (64, 0.75)])
def test_random_mask_any_size_and_ratio(mask_patch_size, ratio):
    # SimMIM's masked-patch sizes 4-64 on the Swin patch grid (patch 4)
    gen = TRANSFORMS.build(dict(type='RandomMaskGenerator', input_size=128,
                                patch_size=4, mask_ratio=ratio,
                                mask_patch_size=mask_patch_size))
    units = (128 // mask_patch_size)**2
    mask = gen({})['mask']
    s = mask_patch_size // 4
    assert mask.sum() == int(np.ceil(units * ratio - 1e-6)) * s * s
    blocks = mask.reshape(32 // s, s, 32 // s, s).sum(axis=(1, 3))
    assert set(np.unique(blocks)) <= {0, s * s}


# --------------------------------------------------- MAE encoder with [M]
def tiny_mae(**backbone):
    model = MODELS.build(dict(
        type='MAEPretrainer',
        backbone=dict(type='MaskedViT', arch=TINY_ARCH, img_size=16,
                      patch_size=4, **backbone),
        neck=dict(type='MAEDecoder', num_patches=16, patch_size=4,
                  embed_dim=32, decoder_embed_dim=16, decoder_depth=1,
                  decoder_num_heads=2),
        head=dict(type='MAEPretrainHead', norm_pix=True, patch_size=4,
                  loss=dict(type='PixelReconstructionLoss',
                            criterion='L2'))))
    model.init_weights()
    return model.eval()


def test_mae_encoder_with_mask_tokens():
    model = tiny_mae(mask_mode='replace')
    img = torch.randn(2, 3, 16, 16)
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[:, :12] = True
    pred = model.predict_patches(img, mask)
    assert pred.shape == (2, 16, 48)
    # the encoder saw mask tokens in place of the masked patches: the
    # masked patches' pixels do not change its output
    img2 = img.clone()
    img2[:, :, :12, :] = torch.randn(2, 3, 12, 16)  # patches 0-11
    torch.testing.assert_close(model.predict_patches(img2, mask), pred)
    # the decoder added no mask token: every position came from the encoder
    tokens = model.backbone(img, mask)
    assert tokens.shape == (2, 17, 32)
    ids = torch.arange(16).expand(2, -1)
    torch.testing.assert_close(model.neck(tokens, ids), pred)
    loss = model.loss(img, samples_with(mask.view(2, 4, 4)))['loss']
    target = model.head.construct_target(img)
    expected = (((pred - target)**2).mean(-1) * mask).sum() / mask.sum()
    torch.testing.assert_close(loss, expected)


def test_replace_mode_mask_token_keeps_position():
    vit = MODELS.build(dict(type='MaskedViT', arch=TINY_ARCH, img_size=16,
                            patch_size=4, mask_mode='replace',
                            final_norm=False))
    vit.init_weights()
    for layer in vit.layers:
        layer.requires_grad_(False)
    vit.layers = torch.nn.ModuleList()  # look at the embeddings only
    img = torch.randn(1, 3, 16, 16)
    mask = torch.ones(1, 16, dtype=torch.bool)
    out = vit(img, mask)[0, 1:]
    expected = vit.mask_token[0] + vit.pos_embed[0, 1:]
    torch.testing.assert_close(vit.pre_norm(expected), out)


def test_vit_masked_patch_corruption_80_10_10():
    torch.manual_seed(0)
    vit = MODELS.build(dict(type='MaskedViT', arch=TINY_ARCH, img_size=64,
                            patch_size=4, mask_mode='replace',
                            mask_corruption=(0.8, 0.1, 0.1)))
    vit.init_weights()
    x = torch.randn(8, 256, 32)
    mask = torch.zeros(8, 256, dtype=torch.bool)
    mask[:, ::2] = True  # 50 % corrupted, as ViT
    out = vit.substitute_masked(x, mask)
    assert torch.equal(out[~mask], x[~mask])
    token = vit.mask_token[0, 0]
    is_token = (out == token).all(-1) & mask
    is_same = (out == x).all(-1) & mask
    flat = x.reshape(-1, 32)
    is_other = mask & ~is_token & ~is_same
    # every 'random' patch is some patch embedding of the batch
    for row in out[is_other][:20]:
        assert (flat == row).all(-1).any()
    n = mask.sum().item()
    assert abs(is_token.sum().item() / n - 0.8) < 0.04
    assert abs(is_other.sum().item() / n - 0.1) < 0.03
    assert abs(is_same.sum().item() / n - 0.1) < 0.03
    with pytest.raises(ValueError, match='summing to 1'):
        MODELS.build(dict(type='MaskedViT', arch=TINY_ARCH, img_size=16,
                          patch_size=4, mask_mode='drop',
                          mask_corruption=(0.8, 0.1, 0.1)))


def test_mae_with_pca_target_head(tmp_path):
    comps = torch.linalg.qr(torch.randn(48, 48))[0].T[:6]
    model = MODELS.build(dict(
        type='MAEPretrainer',
        backbone=dict(type='MaskedViT', arch=TINY_ARCH, img_size=16,
                      patch_size=4),
        neck=dict(type='MAEDecoder', num_patches=16, patch_size=4,
                  embed_dim=32, decoder_embed_dim=16, decoder_depth=1,
                  decoder_num_heads=2, predict_feature_dim=6),
        head=dict(type='MIMTargetHead', criterion='L2', eps=0.,
                  patch_size=4, loss_on='all',
                  target=dict(type='PatchPCATarget', patch_size=4,
                              basis=dict(mean=torch.zeros(48),
                                         components=comps)))))
    model.init_weights()
    img = torch.randn(2, 3, 16, 16)
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[:, 4:] = True
    loss = model.loss(img, samples_with(mask.view(2, 4, 4)))['loss']
    pred = model.predict_patches(img, mask)
    coeffs = model.head.target.patchify(img).flatten(1, 2) @ comps.T
    torch.testing.assert_close(loss, ((pred - coeffs)**2).mean())
    with pytest.raises(ValueError, match='PatchPCATarget needs 6'):
        MODELS.build(dict(
            type='MAEPretrainer',
            backbone=dict(type='MaskedViT', arch=TINY_ARCH, img_size=16,
                          patch_size=4),
            neck=dict(type='MAEDecoder', num_patches=16, patch_size=4,
                      embed_dim=32, decoder_embed_dim=16, decoder_depth=1,
                      decoder_num_heads=2),
            head=dict(type='MIMTargetHead', patch_size=4,
                      target=dict(type='PatchPCATarget', patch_size=4,
                                  basis=dict(mean=torch.zeros(48),
                                             components=comps)))))


def test_decoder_depth_and_width_switches():
    model = MODELS.build(dict(
        type='MAEDecoder', num_patches=16, patch_size=4, embed_dim=32,
        decoder_embed_dim=24, decoder_depth=3, decoder_num_heads=2))
    assert len(model.decoder_blocks) == 3
    assert model.decoder_embed.out_features == 24
    assert model.decoder_blocks[0].ln1.normalized_shape == (24, )


# ------------------------------------------------------- SimMIM heads
def test_simmim_linear_decoder_equals_mmpretrains():
    ours = MODELS.build(dict(type='SimMIMDecoder', in_channels=32,
                             encoder_stride=4))
    theirs = MODELS.build(dict(type='SimMIMLinearDecoder', in_channels=32,
                               encoder_stride=4))
    ours.load_state_dict(theirs.state_dict())  # same parameter names
    x = torch.randn(2, 32, 4, 4)
    torch.testing.assert_close(ours(x), theirs(x))


def test_simmim_decoders_shapes_and_mlp():
    x = torch.randn(2, 32, 4, 4)  # stride 8 features of a 32 px image
    coarse = MODELS.build(dict(type='SimMIMDecoder', in_channels=32,
                               encoder_stride=8, out_stride=16))
    out = coarse(x)
    assert out.shape == (2, 3, 2, 2)
    # a coarser target cell is a linear map of every feature inside it
    w = coarse.decoder[1].weight.view(3, 32, 2, 2)
    manual = torch.einsum('ocij,bcij->bo', w, x[:, :, :2, :2]) + \
        coarse.decoder[1].bias
    torch.testing.assert_close(out[:, :, 0, 0], manual)
    mlp = MODELS.build(dict(type='SimMIMDecoder', in_channels=32,
                            encoder_stride=8, out_channels=24, out_stride=2,
                            num_layers=2, hidden_channels=40))
    assert mlp.mlp[0].out_channels == 40
    out = mlp(x)
    assert out.shape == (2, 24, 16, 16)
    hidden = torch.nn.functional.gelu(mlp.mlp[0](x))
    torch.testing.assert_close(out, mlp.decoder(hidden))
    inv = MODELS.build(dict(type='InverseSwinDecoder', in_channels=32,
                            encoder_stride=8, embed_dims=32, depths=(1, 1),
                            num_heads=(2, 1), window_size=2))
    assert len(inv.stages) == 2 and inv.stages[1].embed_dims == 16
    assert inv(x).shape == (2, 3, 32, 32)


def tiny_simmim(neck, head, **backbone):
    model = MODELS.build(dict(
        type='SimMIMPretrainer',
        backbone=dict(type='SimMIMViT', arch=TINY_ARCH, img_size=16,
                      patch_size=4, drop_path_rate=0., **backbone),
        neck=neck, head=head))
    model.init_weights()
    return model.eval()


def test_simmim_with_colour_bins_and_low_resolution():
    mean, std = [50., 60., 70.], [20., 30., 40.]
    model = tiny_simmim(
        dict(type='SimMIMDecoder', in_channels=32, encoder_stride=4,
             out_channels=3 * 8, out_stride=2, num_layers=2),
        dict(type='MIMTargetHead', patch_size=4, eps=0.,
             target=dict(type='ColorBinTarget', num_bins=8, downsample=2,
                         mean=mean, std=std)))
    img = torch.randn(2, 3, 16, 16)
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[:, 1:3] = True
    loss = model.loss(img, samples_with(mask))['loss']
    logits = model.predict_pixels(img, mask.flatten(1))
    assert logits.shape == (2, 24, 8, 8)
    raw = (img * torch.tensor(std).view(1, 3, 1, 1) +
           torch.tensor(mean).view(1, 3, 1, 1)).clamp(0, 255)
    bins = (torch.nn.functional.avg_pool2d(raw, 2) * 8 / 256).floor().long()
    ce = torch.nn.functional.cross_entropy(
        logits.view(2, 3, 8, 8, 8).permute(0, 2, 1, 3, 4), bins,
        reduction='none').mean(1)
    m = mask.repeat_interleave(2, 1).repeat_interleave(2, 2).float()
    torch.testing.assert_close(loss, (ce * m).sum() / m.sum())
    with pytest.raises(ValueError, match='the head needs 24 at stride 2'):
        tiny_simmim(
            dict(type='SimMIMDecoder', in_channels=32, encoder_stride=4),
            dict(type='MIMTargetHead', patch_size=4,
                 target=dict(type='ColorBinTarget', num_bins=8,
                             downsample=2)))


def test_simmim_l2_on_all_pixels_with_masked_vit():
    model = tiny_simmim(
        dict(type='SimMIMDecoder', in_channels=32, encoder_stride=4),
        dict(type='MIMTargetHead', patch_size=4, criterion='L2',
             loss_on='all', eps=0.))
    img = torch.randn(2, 3, 16, 16)
    mask = torch.rand(2, 4, 4) < 0.5
    loss = model.loss(img, samples_with(mask))['loss']
    rec = model.reconstruct(img, mask.flatten(1))
    torch.testing.assert_close(loss, ((rec - img)**2).mean())


# ------------------------------------------------ partial fine-tuning
@pytest.mark.parametrize('k', [0, 1, 4])
def test_partial_finetuning_freezes_exactly_the_first_blocks(k):
    cfg = Config.fromfile(
        'configs/benchmarks/classification/demo_mae-vit_ft_fashion-mnist.py')
    cfg.model.backbone.init_cfg = None
    cfg.model.backbone.frozen_stages = 4 - k
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    expected = {n for n, _ in model.named_parameters()
                if n.startswith('head.') or
                any(n.startswith(f'backbone.layers.{i}.')
                    for i in range(4 - k, 4))}
    if k > 0:  # the fc_norm after the blocks trains unless all are frozen
        expected |= {'backbone.ln2.weight', 'backbone.ln2.bias'}
    if k == 4:  # every block: full fine-tuning, nothing frozen
        expected = {n for n, _ in model.named_parameters()}
    assert trainable == expected
    for i, layer in enumerate(model.backbone.layers):
        assert layer.training == (i >= 4 - k)  # frozen blocks: eval mode
    assert model.backbone.patch_embed.training == (k == 4)
