"""Components that recipes need: MAE's single-draw crop and iTPN's absolute
table kept at the pre-training grid."""
import math

import numpy as np
import torch
import torch.nn.functional as F

from mmpretrain.registry import MODELS, TRANSFORMS

from mmmim.models.backbones.itpn_hivit import resample_pos_embed_reference


def _single_draw_boxes(h, w, n, seed, scale=(0.08, 1.0),
                       ratio=(3. / 4., 4. / 3.)):
    """MAE util/crop.py's rule, written out with numpy's generator."""
    rng = np.random.RandomState(seed)
    boxes = []
    for _ in range(n):
        area = rng.uniform(*scale) * h * w
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        tw = min(int(round(math.sqrt(area * aspect))), w)
        th = min(int(round(math.sqrt(area / aspect))), h)
        i = rng.randint(0, h - th + 1)
        j = rng.randint(0, w - tw + 1)
        boxes.append((i, j, th, tw))
    return boxes


def test_single_draw_crop_draws_once_and_clamps():
    crop = TRANSFORMS.build(
        dict(type='SingleDrawRandomResizedCrop', scale=8,
             interpolation='bicubic'))
    img = np.zeros((30, 60, 3), np.uint8)  # wide: tall boxes get clamped
    np.random.seed(3)
    got = [crop.rand_crop_params(img) for _ in range(200)]
    assert got == _single_draw_boxes(30, 60, 200, seed=3)
    heights = [b[2] for b in got]
    # clamped, never redrawn: full-height boxes are common (torchvision's
    # retry loop makes them rare), and nothing exceeds the image
    assert max(heights) == 30 and heights.count(30) > 20
    assert all(0 < b[3] <= 60 and b[0] + b[2] <= 30 and b[1] + b[3] <= 60
               for b in got)
    out = crop(dict(img=np.random.randint(0, 255, (30, 60, 3), np.uint8)))
    assert out['img'].shape == (8, 8, 3)


HIVIT_TINY = dict(embed_dims=64, depths=[1, 1, 2], num_heads=2)


def test_itpn_pos_embed_size_keeps_the_pretraining_grid():
    # a 64 px backbone (4 x 4 patches) whose absolute table stays 2 x 2 and
    # is resampled to the input grid at every forward (the reference's
    # interpolate_pos_encoding); the relative tables follow the input grid
    bb = MODELS.build(
        dict(type='iTPNBackbone', arch=HIVIT_TINY, img_size=64,
             pos_embed_size=2, use_rel_pos_bias=True, out_indices=(2, )))
    assert bb.pos_embed.shape == (1, 4, 64)
    assert bb.main_blocks[0].attn.relative_position_bias_table.shape[0] == 49
    torch.testing.assert_close(
        bb._pos_embed_for((4, 4), 16),
        resample_pos_embed_reference(bb.pos_embed, (2, 2), (4, 4)))
    out = bb(torch.randn(2, 3, 64, 64))[0]
    assert out.shape == (2, 64, 4, 4)
    out.sum().backward()
    assert bb.pos_embed.grad is not None and bb.pos_embed.grad.abs().sum() > 0
    # with reference_pos_interp=False: an exact-size bicubic resize
    bb = MODELS.build(
        dict(type='iTPNBackbone', arch=HIVIT_TINY, img_size=64,
             pos_embed_size=2, reference_pos_interp=False))
    grid = bb.pos_embed.reshape(1, 2, 2, 64).permute(0, 3, 1, 2)
    expect = F.interpolate(grid, size=(4, 4), mode='bicubic',
                           align_corners=False)
    torch.testing.assert_close(
        bb._pos_embed_for((4, 4), 16),
        expect.permute(0, 2, 3, 1).reshape(1, 16, 64))


def test_itpn_pos_embed_size_defaults_to_the_input_grid():
    bb = MODELS.build(dict(type='iTPNBackbone', arch=HIVIT_TINY, img_size=64))
    assert bb.pos_embed_grid == (4, 4) and bb.pos_embed.shape == (1, 16, 64)
    torch.testing.assert_close(bb._pos_embed_for((4, 4), 16), bb.pos_embed)
