"""SIM's relative position embedding against the crop geometry."""
import numpy as np
import pytest
import torch

from mmmim.models.utils import sincos_1d, sincos_pos_embed_2d
from mmmim.models.utils.relative_position import (relative_geometry,
                                                  relative_positions,
                                                  sim_relative_pos_embed)


def _random_crops(rng, batch, height, width):
    """Random boxes (i, j, h, w) inside an image of the given size."""
    h = rng.integers(4, height + 1, size=batch)
    w = rng.integers(4, width + 1, size=batch)
    i = rng.integers(0, height - h + 1)
    j = rng.integers(0, width - w + 1)
    return np.stack([i, j, h, w], axis=1).astype(np.float64)


def _ground_truth(box1, box2, flip1, flip2, width, grid, size=224):
    """Centres of view 2's patches mapped pixel by pixel into view 1's grid.

    Patch (r, c) of view 2 is centred at output pixel ((r + .5) S / G,
    (c + .5) S / G); the crop maps it into the (possibly flipped) image, the
    flips map it into the original image and then into view 1's flipped
    frame, and view 1's crop maps it to view 1's patch grid (0 = centre of
    patch 0).
    """
    i1, j1, h1, w1 = box1
    i2, j2, h2, w2 = box2
    gh, gw = np.zeros((grid, grid)), np.zeros((grid, grid))
    for r in range(grid):
        for c in range(grid):
            y_out, x_out = (r + .5) * size / grid, (c + .5) * size / grid
            y = i2 + y_out * h2 / size
            x2 = j2 + x_out * w2 / size           # in view 2's flipped frame
            u = width - x2 if flip2 else x2       # original image
            x1 = width - u if flip1 else u        # view 1's flipped frame
            gh[r, c] = (y - i1) / h1 * grid - .5
            gw[r, c] = (x1 - j1) / w1 * grid - .5
    return gh.reshape(-1), gw.reshape(-1)


@pytest.mark.parametrize('flips', ['none', 'random', 'all'])
def test_positions_match_geometry(flips):
    rng = np.random.default_rng(0)
    batch, grid, height, width = 16, 14, 300, 400
    box1 = _random_crops(rng, batch, height, width)
    box2 = _random_crops(rng, batch, height, width)
    if flips == 'none':
        f1 = f2 = np.zeros(batch, bool)
    elif flips == 'all':
        f1, f2 = np.ones(batch, bool), np.zeros(batch, bool)
    else:
        f1, f2 = rng.random(batch) < .5, rng.random(batch) < .5
    geo = relative_geometry(
        torch.from_numpy(box1), torch.from_numpy(box2), torch.from_numpy(f1),
        torch.from_numpy(f2), torch.full((batch, ), float(width)))
    pos_h, pos_w = relative_positions(geo, grid)
    emb = sim_relative_pos_embed(geo, 64, grid)
    assert emb.shape == (batch, grid * grid, 128)
    assert emb.dtype == torch.float32
    for b in range(batch):
        gt_h, gt_w = _ground_truth(box1[b], box2[b], f1[b], f2[b], width, grid)
        np.testing.assert_allclose(pos_h[b].numpy(), gt_h, rtol=0, atol=1e-6)
        np.testing.assert_allclose(pos_w[b].numpy(), gt_w, rtol=0, atol=1e-6)
        # the embedding encodes exactly these positions and the log scales
        log_h = torch.tensor(10 * np.log(box2[b, 2] / box1[b, 2]))
        log_w = torch.tensor(10 * np.log(box2[b, 3] / box1[b, 3]))
        expected = torch.cat([
            sincos_1d(torch.from_numpy(gt_h), 32),
            sincos_1d(torch.from_numpy(gt_w), 32),
            sincos_1d(log_h, 32).expand(grid * grid, -1),
            sincos_1d(log_w, 32).expand(grid * grid, -1),
        ], dim=-1).float()
        torch.testing.assert_close(emb[b], expected, rtol=0, atol=1e-6)


def test_identical_crops_give_sincos_table():
    grid, dim, batch = 14, 64, 3
    box = torch.tensor([[10., 20., 150., 170.]]).expand(batch, -1)
    flips = torch.tensor([False, True, True])
    geo = relative_geometry(box, box, flips, flips,
                            torch.full((batch, ), 300.))
    emb = sim_relative_pos_embed(geo, dim, grid)
    table = sincos_pos_embed_2d(grid, grid, dim, layout='yx')[0]
    for b in range(batch):
        torch.testing.assert_close(emb[b, :, :dim], table, rtol=0, atol=1e-6)
        # zero log-scale: sin = 0, cos = 1
        scale = emb[b, :, dim:]
        zeros = torch.zeros(grid * grid, dim // 4)
        ones = torch.ones(grid * grid, dim // 4)
        torch.testing.assert_close(
            scale, torch.cat([zeros, ones, zeros, ones], dim=1))


def test_rectangular_grid_and_reference_deltas():
    # a hand-computed case: view 2 is the right half of view 1, no flip
    box1 = torch.tensor([[0., 0., 64., 64.]])
    box2 = torch.tensor([[0., 32., 64., 32.]])
    geo = relative_geometry(box1, box2, torch.tensor([False]),
                            torch.tensor([False]), torch.tensor([64.]))
    assert geo.delta_j.item() == .5 and geo.delta_w.item() == .5
    pos_h, pos_w = relative_positions(geo, (2, 4))
    # view 2's 4 columns cover view 1's columns 2..3: centres at 1.75 + c / 2
    torch.testing.assert_close(
        pos_w[0], torch.tensor([1.75, 2.25, 2.75, 3.25] * 2,
                               dtype=torch.float64))
    torch.testing.assert_close(
        pos_h[0], torch.tensor([0.] * 4 + [1.] * 4, dtype=torch.float64))
