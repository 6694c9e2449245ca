"""mmmim uses the libraries' helpers where they give the same numbers: each
test computes the result the way mmmim's own copy did (the explicit
algorithm) and requires the library's to be identical, bit for bit."""
import gzip
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.datasets.transforms import SimMIMMaskGenerator
from mmpretrain.models.utils import (build_2d_sincos_position_embedding,
                                     resize_pos_embed)
from timm.layers import gen_relative_position_index

from mmmim.datasets import read_idx_gz
from mmmim.datasets.transforms.mask_generators import RandomMaskGenerator
from mmmim.models.utils import resize_rel_pos_bias, sincos_pos_embed_2d
from mmmim.models.utils.checkpoint_loading import (resize_abs_pos_embed,
                                                   resize_rel_pos_table)

from .conftest import FASHION_MNIST_ROOT, requires_fashion_mnist

GRIDS = [(1, 1), (2, 3), (4, 4), (3, 5), (7, 7), (14, 14)]


def explicit_relative_position_index(h, w):
    """BEiT / Swin: index of (dy + h - 1) * (2w - 1) + (dx + w - 1)."""
    coords = torch.stack(
        torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij'))
    coords = coords.flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
    rel[:, :, 0] += h - 1
    rel[:, :, 1] += w - 1
    rel[:, :, 0] *= 2 * w - 1
    return rel.sum(-1)


@pytest.mark.parametrize('grid', GRIDS)
def test_relative_position_index_is_timms(grid):
    assert torch.equal(gen_relative_position_index(grid),
                       explicit_relative_position_index(*grid))


def explicit_rel_table_resize(table, src, dst, extra=0):
    """Bicubic resize of the (2h-1) x (2w-1) grid part, extra rows kept."""
    heads = table.shape[1]
    body = table[:table.shape[0] - extra]
    t = body.T.reshape(1, heads, 2 * src[0] - 1, 2 * src[1] - 1).float()
    t = F.interpolate(t, size=(2 * dst[0] - 1, 2 * dst[1] - 1),
                      mode='bicubic', align_corners=False)
    return torch.cat([t.reshape(heads, -1).T, table[table.shape[0] - extra:]])


@pytest.mark.parametrize('src,dst', [((2, 2), (4, 4)), ((4, 4), (2, 3)),
                                     ((3, 5), (6, 2)), ((7, 7), (14, 14))])
def test_rel_table_resizing_is_timms(src, dst):
    g = torch.Generator().manual_seed(0)
    table = torch.randn((2 * src[0] - 1) * (2 * src[1] - 1), 3, generator=g)
    assert torch.equal(resize_rel_pos_bias(table, src, dst),
                       explicit_rel_table_resize(table, src, dst))
    if src[0] == src[1]:  # the checkpoint path: BEiT's 3 cls rows kept
        beit = torch.cat([table, torch.randn(3, 3, generator=g)])
        dst_rows = (2 * dst[0] - 1) * (2 * dst[1] - 1) + 3
        if dst[0] == dst[1]:
            out = resize_rel_pos_table(beit, torch.Size([dst_rows, 3]))
            assert torch.equal(
                out, explicit_rel_table_resize(beit, src, dst, extra=3))


def explicit_pos_resize(pos, src, dst, extra):
    c = pos.shape[-1]
    grid = pos[:, extra:].reshape(1, src[0], src[1], c).permute(0, 3, 1, 2)
    grid = F.interpolate(grid.float(), size=dst, mode='bicubic',
                         align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, c).to(pos.dtype)
    return torch.cat([pos[:, :extra], grid], dim=1)


@pytest.mark.parametrize('extra', [0, 1])
@pytest.mark.parametrize('src,dst', [((4, 4), (8, 8)), ((8, 8), (3, 5)),
                                     ((14, 14), (16, 16))])
def test_abs_pos_resizing_is_mmpretrains(src, dst, extra):
    pos = torch.randn(1, extra + src[0] * src[1], 8,
                      generator=torch.Generator().manual_seed(1))
    expect = explicit_pos_resize(pos, src, dst, extra)
    assert torch.equal(
        resize_pos_embed(pos, src, dst, num_extra_tokens=extra), expect)
    if dst[0] == dst[1]:  # the checkpoint path guesses square grids
        dst_shape = torch.Size([1, extra + dst[0] * dst[1], 8])
        assert torch.equal(resize_abs_pos_embed(pos, dst_shape), expect)


def explicit_random_mask(num_units, num_masked, grid, scale):
    ids = np.random.permutation(num_units)[:num_masked]
    mask = np.zeros(num_units, dtype=int)
    mask[ids] = 1
    return mask.reshape(grid).repeat(scale, 0).repeat(scale, 1)


@pytest.mark.parametrize('size,patch,mask_patch,ratio', [
    (224, 16, None, 0.75), (224, 16, 32, 0.6), (192, 4, 32, 0.6),
    (32, 4, None, 0.75)])
def test_random_masks_are_simmim_mask_generators(size, patch, mask_patch,
                                                 ratio):
    ours = RandomMaskGenerator(size, patch, ratio, mask_patch)
    theirs = SimMIMMaskGenerator(size, mask_patch or patch, patch, ratio)
    assert ours.num_masked_units == theirs.mask_count
    side = size // (mask_patch or patch)
    for seed in range(20):
        np.random.seed(seed)
        mask = ours({})['mask']
        np.random.seed(seed)
        assert np.array_equal(mask, theirs({})['mask'])
        np.random.seed(seed)
        assert np.array_equal(mask, explicit_random_mask(
            side * side, ours.num_masked_units, (side, side), ours.scale))
    # non-square images (mmpretrain's transform takes square ones): the same
    # draw on an (h, w) grid
    gen = RandomMaskGenerator((32, 48), 8, 0.5)
    np.random.seed(3)
    mask = gen({})['mask']
    np.random.seed(3)
    assert np.array_equal(mask, explicit_random_mask(24, 12, (4, 6), 1))


def test_round_off_count_where_mmpretrain_rounds_up():
    # 100 * 0.07 = 7.000000000000001: np.ceil gives 8, the mask ratio 7
    ours = RandomMaskGenerator(100, 10, 0.07)
    assert SimMIMMaskGenerator(100, 10, 10, 0.07).mask_count == 8
    assert ours.mask_count == ours.num_masked_units == 7
    assert ours({})['mask'].sum() == 7


def explicit_idx_read(path):
    with gzip.open(path, 'rb') as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], 'big')
    ndim = magic & 0xFF
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big')
             for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8,
                         offset=4 + 4 * ndim).reshape(shape)


@requires_fashion_mnist
@pytest.mark.parametrize('name', ['t10k-images-idx3-ubyte.gz',
                                  't10k-labels-idx1-ubyte.gz'])
def test_fashion_mnist_reader_is_mmpretrains(name, tmp_path):
    path = osp.join(FASHION_MNIST_ROOT, name)
    ours = read_idx_gz(path)
    assert ours.dtype == np.uint8 and np.array_equal(ours,
                                                     explicit_idx_read(path))
    # a cut file names itself
    with gzip.open(path, 'rb') as f:
        data = f.read()
    cut = tmp_path / name
    with gzip.open(cut, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(ValueError, match=name):
        read_idx_gz(str(cut))


def test_kept_sincos_tables_differ_from_mmpretrains():
    # why mmmim keeps its own: float64 as the references, not float32
    ours = sincos_pos_embed_2d(14, 14, 768, 'yx', cls_token=True)
    theirs = build_2d_sincos_position_embedding(14, 768, cls_token=True)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)
    assert not torch.equal(ours, theirs)
