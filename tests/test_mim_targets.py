"""Prediction targets of the ablations (SimMIM / MAE / ViT papers) and the
head that turns any of them into a loss: values checked by hand."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmpretrain.registry import MODELS
from tests.conftest import requires_fashion_mnist

from mmmim.models.heads.mim_target_head import (mask_to_target_grid,
                                                patch_tokens_to_map)
from mmmim.models.target_generators.mim_targets import (
    fit_color_palette, fit_patch_pca, nearest_palette_index)

IDENTITY = dict(mean=[0., 0., 0.], std=[1., 1., 1.])  # inputs = 0-255 colours


def build(cfg):
    return MODELS.build(cfg)


def test_pixel_target_downsampled_is_the_block_mean():
    img = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    t = build(dict(type='PixelTarget', downsample=2))
    assert t.stride == 2 and t.pred_channels == 3
    out = t(img)
    assert out.shape == (2, 3, 2, 2)
    # top-left 2x2 block of channel 0 of image 0: 0, 1, 4, 5
    assert out[0, 0, 0, 0] == (0 + 1 + 4 + 5) / 4
    assert out[1, 2, 1, 1] == img[1, 2, 2:, 2:].mean()
    assert torch.equal(build(dict(type='PixelTarget'))(img), img)
    with pytest.raises(ValueError, match='not divisible'):
        build(dict(type='PixelTarget', downsample=3))(img)


def test_pixel_target_norm_equals_mae_norm_pix():
    img = torch.randn(2, 3, 16, 16)
    t = build(dict(type='PixelTarget', norm_patch_size=8))(img)
    mae = build(dict(type='MAEPretrainHead', norm_pix=True, patch_size=8,
                     loss=dict(type='PixelReconstructionLoss',
                               criterion='L2')))
    expected = mae.construct_target(img)  # (B, L, p*p*3)
    as_tokens = t.reshape(2, 3, 2, 8, 2, 8).permute(0, 2, 4, 3, 5, 1)
    torch.testing.assert_close(as_tokens.reshape(2, 4, -1), expected)


def test_color_bins_per_channel_and_joint():
    values = torch.tensor([0., 31., 32., 255.])
    img = values.view(1, 1, 1, 4).expand(1, 3, 1, 4).clone()
    img[0, 1] = torch.tensor([63., 64., 200., 100.])
    t8 = build(dict(type='ColorBinTarget', num_bins=8, **IDENTITY))
    assert t8.kind == 'classification' and t8.pred_channels == 3 * 8
    bins = t8(img)
    assert bins.dtype == torch.long and bins.shape == (1, 3, 1, 4)
    assert bins[0, 0, 0].tolist() == [0, 0, 1, 7]      # floor(v * 8 / 256)
    assert bins[0, 1, 0].tolist() == [1, 2, 6, 3]
    t256 = build(dict(type='ColorBinTarget', num_bins=256, **IDENTITY))
    assert t256(img)[0, 0, 0].tolist() == [0, 31, 32, 255]
    joint = build(dict(type='ColorBinTarget', num_bins=8, joint=True,
                       **IDENTITY))
    assert joint.num_classes == 512 and joint.pred_channels == 512
    # colour (v0, v1, v2) -> b0 * 64 + b1 * 8 + b2
    expected = [0 * 64 + 1 * 8 + 0, 0 * 64 + 2 * 8 + 0, 1 * 64 + 6 * 8 + 1,
                7 * 64 + 3 * 8 + 7]
    assert joint(img)[0, 0, 0].tolist() == expected


def test_color_bins_of_the_mean_colour_and_denormalisation():
    # ViT's 3-bit mean colour of a 2x2 patch; inputs normalised
    mean, std = [10., 20., 30.], [2., 4., 5.]
    raw = torch.tensor([[0., 64.], [128., 200.]])  # mean 98 -> 8-bin 3
    img = torch.stack([(raw - m) / s for m, s in zip(mean, std)])[None]
    t = build(dict(type='ColorBinTarget', num_bins=8, joint=True,
                   downsample=2, mean=mean, std=std))
    assert t(img).view(-1).tolist() == [3 * 64 + 3 * 8 + 3]


def test_color_palette_nearest_colour():
    palette = [[0., 0., 0.], [255., 255., 255.], [255., 0., 0.]]
    t = build(dict(type='ColorPaletteTarget', palette=palette, **IDENTITY))
    assert t.num_classes == 3 and t.pred_channels == 3
    colours = torch.tensor([[10., 5., 0.], [250., 240., 255.],
                            [200., 30., 20.], [128., 0., 0.]])
    img = colours.T.reshape(1, 3, 1, 4)
    # [128, 0, 0] is 128 from black and 127 from red
    assert t(img).view(-1).tolist() == [0, 1, 2, 2]
    assert nearest_palette_index(colours, torch.tensor(palette),
                                 chunk_size=3).tolist() == [0, 1, 2, 2]


def test_color_palette_file_and_missing_file(tmp_path):
    path = str(tmp_path / 'palette.npz')
    np.savez(path, palette=np.array([[0, 0, 0], [255, 255, 255]]))
    t = build(dict(type='ColorPaletteTarget', palette=path, downsample=2,
                   **IDENTITY))
    img = torch.full((1, 3, 2, 2), 200.)
    assert t(img).view(-1).tolist() == [1]
    with pytest.raises(FileNotFoundError, match='fit_mim_targets'):
        build(dict(type='ColorPaletteTarget', palette='/nope.npz'))


def test_kmeans_palette_finds_the_clusters():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[20., 20., 20.], [200., 40., 40.],
                            [60., 220., 90.]])
    colours = torch.cat([c + torch.randn(200, 3, generator=g)
                         for c in centres])
    palette = fit_color_palette(colours, num_colours=3, iters=10)
    # sorted by channel sum: the three true centres in that order
    torch.testing.assert_close(palette, centres, atol=0.3, rtol=0)


def test_patch_pca_coefficients_by_hand():
    # 1-px patches of 3 channels: components = two axes
    basis = dict(mean=[1., 2., 3.],
                 components=[[1., 0., 0.], [0., 0.6, 0.8]])
    t = build(dict(type='PatchPCATarget', basis=basis, patch_size=1))
    img = torch.tensor([4., 7., 8.]).view(1, 3, 1, 1)
    # (3, 5, 5) . (1, 0, 0) = 3 ; . (0, .6, .8) = 7
    torch.testing.assert_close(t(img).view(-1), torch.tensor([3., 7.]))
    t1 = build(dict(type='PatchPCATarget', basis=basis, patch_size=1,
                    num_components=1))
    assert t1.pred_channels == 1


def test_patch_pca_uses_mae_patch_order(tmp_path):
    g = torch.Generator().manual_seed(0)
    img = torch.randn(2, 3, 8, 8, generator=g)
    comps = torch.linalg.qr(torch.randn(48, 48, generator=g))[0].T[:5]
    mean = torch.randn(48, generator=g)
    path = str(tmp_path / 'pca.pt')
    torch.save(dict(mean=mean, components=comps), path)
    t = build(dict(type='PatchPCATarget', basis=path, patch_size=4))
    out = t(img)
    assert out.shape == (2, 5, 2, 2)
    mae = build(dict(type='MAEPretrainHead', patch_size=4,
                     loss=dict(type='PixelReconstructionLoss',
                               criterion='L2')))
    patches = mae.patchify(img)  # (B, 4, 48), (row, col, channel)
    expected = (patches - mean) @ comps.T
    torch.testing.assert_close(out.flatten(2).transpose(1, 2), expected)


def test_fit_patch_pca_recovers_the_main_axis():
    g = torch.Generator().manual_seed(0)
    axis = torch.tensor([3., 4., 0.]) / 5
    data = torch.randn(2000, 1, generator=g) * 10 * axis + \
        torch.randn(2000, 3, generator=g) * 0.1 + torch.tensor([1., 2., 3.])
    mean, comps, var = fit_patch_pca(data)
    torch.testing.assert_close(mean, torch.tensor([1., 2., 3.]), atol=0.6,
                               rtol=0)
    torch.testing.assert_close(comps[0], axis, atol=1e-3, rtol=0)
    assert var[0] > 50 and var[1] < 0.02
    torch.testing.assert_close(comps @ comps.T, torch.eye(3), atol=1e-5,
                               rtol=0)


def tiny_dalle(path, vocab=16):
    enc = MODELS.build(dict(type='DALL-E', n_hid=4, vocab_size=vocab))
    g = torch.Generator().manual_seed(0)
    state = {k: torch.randn(v.shape, generator=g) * 0.5
             for k, v in enc.state_dict().items()}
    torch.save(state, path)
    enc.load_state_dict(state)
    return enc


def test_dvae_tokens_are_the_tokenizers_argmax(tmp_path):
    path = str(tmp_path / 'dalle.pth')
    enc = tiny_dalle(path)
    mean, std = [100., 110., 120.], [50., 60., 70.]
    t = build(dict(type='DVAETokenTarget', checkpoint=path, stride=8,
                   tokenizer=dict(type='DALL-E', n_hid=4, vocab_size=16),
                   mean=mean, std=std))
    assert t.num_classes == 16 and t.stride == 8
    img = torch.randn(2, 3, 16, 16)
    tokens = t(img)
    assert tokens.shape == (2, 1, 2, 2)
    raw = img * torch.tensor(std).view(1, 3, 1, 1) + \
        torch.tensor(mean).view(1, 3, 1, 1)
    x = 0.8 * (raw.clamp(0, 255) / 255.) + 0.1  # 16 px / 8 * 8: no resize
    torch.testing.assert_close(tokens[:, 0], enc(x).argmax(1))
    # 16-px tokens: the tokenizer reads the image at half size
    t16 = build(dict(type='DVAETokenTarget', checkpoint=path, stride=16,
                     tokenizer=dict(type='DALL-E', n_hid=4, vocab_size=16),
                     mean=mean, std=std))
    assert t16.tokenizer_input(img).shape[-2:] == (8, 8)
    assert t16(img).shape == (2, 1, 1, 1)
    assert not any(p.requires_grad for p in t.parameters())
    with pytest.raises(FileNotFoundError, match='nothing is downloaded'):
        build(dict(type='DVAETokenTarget', checkpoint=None))


def test_patch_tokens_to_map_and_mask_grid():
    pred = torch.arange(2 * 4 * 12, dtype=torch.float32).view(2, 4, 12)
    m = patch_tokens_to_map(pred, (2, 2), 2)  # 2x2 cells of 3 channels
    assert m.shape == (2, 3, 4, 4)
    # patch 1 (row 0, col 1), cell (1, 0), channel 2 -> value index
    # 1 * 6 + 0 * 3 + 2 within the patch
    assert m[0, 2, 1, 2] == pred[0, 1, 1 * 6 + 0 * 3 + 2]
    mask = torch.tensor([[1, 0, 0, 1]])
    fine = mask_to_target_grid(mask, (2, 2), patch_size=4, stride=2)
    assert fine.tolist() == [[[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1],
                              [0, 0, 1, 1]]]
    coarse = mask_to_target_grid(mask, (2, 2), patch_size=4, stride=8)
    assert coarse.tolist() == [[[0.5]]]


def _simmim_l1(pred, img, mask, p):
    m = mask.view(-1, img.shape[2] // p, img.shape[3] // p)
    m = m.repeat_interleave(p, 1).repeat_interleave(p, 2).unsqueeze(1)
    return ((pred - img).abs() * m).sum() / (m.sum() + 1e-5) / 3


def test_head_pixels_l1_equals_simmim_and_l2_equals_mae():
    img = torch.randn(2, 3, 16, 16)
    mask = torch.tensor([[1, 0, 1, 1], [0, 1, 0, 0]])
    head = build(dict(type='MIMTargetHead', patch_size=8))
    pred = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(head.loss(pred, img, mask),
                               _simmim_l1(pred, img, mask, 8))
    mae_head = build(dict(type='MAEPretrainHead', norm_pix=True, patch_size=8,
                          loss=dict(type='PixelReconstructionLoss',
                                    criterion='L2')))
    tokens = torch.randn(2, 4, 8 * 8 * 3)
    ours = build(dict(type='MIMTargetHead', criterion='L2', eps=0.,
                      patch_size=8,
                      target=dict(type='PixelTarget', norm_patch_size=8)))
    torch.testing.assert_close(ours.loss(tokens, img, mask),
                               mae_head.loss(tokens, img, mask.float()))


def test_head_loss_on_all_and_coarse_targets():
    img = torch.randn(1, 3, 16, 16)
    mask = torch.tensor([[1, 0, 0, 0]])
    pred = torch.randn(1, 3, 16, 16)
    all_px = build(dict(type='MIMTargetHead', patch_size=8, loss_on='all',
                        criterion='L2', eps=0.))
    torch.testing.assert_close(all_px.loss(pred, img, mask),
                               ((pred - img)**2).mean())
    # 16x down-sampled: one location, half... a quarter of it masked
    coarse = build(dict(type='MIMTargetHead', patch_size=8, eps=0.,
                        target=dict(type='PixelTarget', downsample=16)))
    small = torch.randn(1, 3, 1, 1)
    err = (small - img.mean(dim=(2, 3), keepdim=True)).abs().mean()
    torch.testing.assert_close(coarse.loss(small, img, mask), err)


def test_head_cross_entropy_per_channel_bins():
    img = torch.randint(0, 256, (2, 3, 8, 8)).float()
    mask = torch.tensor([[1, 0, 0, 1], [0, 0, 1, 0]])
    head = build(dict(type='MIMTargetHead', patch_size=4, eps=0.,
                      target=dict(type='ColorBinTarget', num_bins=8,
                                  **IDENTITY)))
    logits = torch.randn(2, 3 * 8, 8, 8)
    bins = (img * 8 / 256).floor().long()
    ce = F.cross_entropy(logits.view(2, 3, 8, 8, 8).permute(0, 2, 1, 3, 4),
                         bins, reduction='none').mean(1)  # (B, H, W)
    m = mask.view(2, 2, 2).repeat_interleave(4, 1).repeat_interleave(4, 2)
    torch.testing.assert_close(head.loss(logits, img, mask),
                               (ce * m).sum() / m.sum())
    with pytest.raises(ValueError, match='do not fit the target'):
        head.loss(torch.randn(2, 3, 8, 8), img, mask)


@requires_fashion_mnist
def test_fit_tool_writes_files_the_targets_read(tmp_path):
    import importlib.util
    import os.path as osp
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    spec = importlib.util.spec_from_file_location(
        'fit_mim_targets', osp.join(root, 'tools/analysis/fit_mim_targets.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    config = osp.join(root, 'configs/demo/mae_fashion-mnist.py')
    pca = str(tmp_path / 'pca.npz')
    _, comps, var = tool.main(['pca', config, '--out', pca, '--num-images',
                               '32', '--patch-size', '4'])
    assert comps.shape == (48, 48) and (var[:-1] >= var[1:]).all()
    t = build(dict(type='PatchPCATarget', basis=pca, patch_size=4,
                   num_components=8))
    assert t(torch.randn(1, 3, 32, 32)).shape == (1, 8, 8, 8)
    palette = str(tmp_path / 'palette.npz')
    out = tool.main(['palette', config, '--out', palette, '--num-images',
                     '32', '--num-colours', '16', '--iters', '3'])
    assert out.shape == (16, 3) and out.min() >= 0 and out.max() <= 255
    # grey images: every palette colour is grey
    assert torch.allclose(out[:, 0], out[:, 1]) and \
        torch.allclose(out[:, 1], out[:, 2])
    t = build(dict(type='ColorPaletteTarget', palette=palette,
                   mean=[72.94] * 3, std=[90.02] * 3))
    assert t.num_classes == 16
