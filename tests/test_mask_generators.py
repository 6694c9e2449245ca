import numpy as np
import pytest
import torch
from mmengine.runner import set_random_seed

from mmpretrain.registry import TRANSFORMS

from mmmim.datasets.transforms.mask_generators import (BlockwiseMaskGenerator,
                                                       RandomMaskGenerator,
                                                       num_masked_patches)
from mmmim.models.utils.masking import masks_from_data_samples

SEEDS = range(50)


def _masks(gen, seeds=SEEDS):
    out = []
    for seed in seeds:
        np.random.seed(seed)
        out.append(gen({})['mask'])
    return out


def test_registered_under_own_names():
    assert TRANSFORMS.get('RandomMaskGenerator') is RandomMaskGenerator
    assert TRANSFORMS.get('BlockwiseMaskGenerator') is BlockwiseMaskGenerator


@pytest.mark.parametrize('num_patches', [4, 16, 49, 64, 196, 256, 576])
@pytest.mark.parametrize(
    'ratio', [0.1, 0.25, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9])
def test_count_equals_mae_formula(num_patches, ratio):
    mae = num_patches - int(num_patches * (1 - ratio))
    assert num_masked_patches(num_patches, ratio) == mae


def test_count_round_off():
    # 100 * 0.07 = 7.000000000000001 in float; ceil would give 8.
    assert num_masked_patches(100, 0.07) == 7
    assert num_masked_patches(49, 0.6) == 30
    assert num_masked_patches(196, 0.75) == 147


def test_random_mae_mode_exact_count():
    gen = TRANSFORMS.build(
        dict(type='RandomMaskGenerator', input_size=224, patch_size=16,
             mask_ratio=0.75))
    assert gen.num_masked == 147
    masks = _masks(gen)
    for m in masks:
        assert m.shape == (14, 14)
        assert set(np.unique(m)) == {0, 1}
        assert m.sum() == 147
    # Masks differ between seeds and cover every patch over many draws.
    assert len({m.tobytes() for m in masks}) == len(masks)
    assert np.stack(masks).sum(0).min() > 0
    # mask_patch_size == patch_size is the same MAE mode.
    gen2 = RandomMaskGenerator(224, 16, 0.75, mask_patch_size=16)
    assert all(m.sum() == 147 for m in _masks(gen2))


def test_random_mae_mode_small_grid():
    gen = RandomMaskGenerator(input_size=32, patch_size=8, mask_ratio=0.75)
    assert all(m.shape == (4, 4) and m.sum() == 12 for m in _masks(gen))
    gen = RandomMaskGenerator(input_size=(32, 48), patch_size=8,
                              mask_ratio=0.5)
    assert all(m.shape == (4, 6) and m.sum() == 12 for m in _masks(gen))


def test_random_simmim_mode_blocks():
    gen = RandomMaskGenerator(input_size=224, patch_size=16, mask_ratio=0.6,
                              mask_patch_size=32)
    assert gen.num_masked_units == 30 and gen.num_masked == 120
    for m in _masks(gen):
        assert m.shape == (14, 14)
        assert m.sum() == 120
        # Each 2x2 group of model patches is all masked or all visible.
        groups = m.reshape(7, 2, 7, 2).transpose(0, 2, 1, 3).reshape(7, 7, 4)
        assert np.all((groups.sum(-1) == 0) | (groups.sum(-1) == 4))
        assert groups[..., 0].sum() == 30
    # Swin-style: mask patch 32 over model patch 4 -> 8x8 groups.
    gen = RandomMaskGenerator(input_size=192, patch_size=4, mask_ratio=0.6,
                              mask_patch_size=32)
    m = _masks(gen, [0])[0]
    assert m.shape == (48, 48) and m.sum() == 22 * 64  # ceil(36 * 0.6) = 22


def test_blockwise_exact_count_sim():
    gen = TRANSFORMS.build(
        dict(type='BlockwiseMaskGenerator', input_size=224, patch_size=16,
             num_masking_patches=118, min_num_patches=16, exact_count=True))
    masks = _masks(gen, range(200))
    for m in masks:
        assert m.shape == (14, 14)
        assert m.sum() == 118
    assert len({m.tobytes() for m in masks}) == len(masks)


def test_blockwise_without_top_up_never_exceeds():
    gen = BlockwiseMaskGenerator(224, 16, num_masking_patches=118,
                                 min_num_patches=16)
    counts = [m.sum() for m in _masks(gen, range(300))]
    assert max(counts) <= 118
    # Blocks stop short sometimes at 118 of 196 (the case SIM tops up).
    assert min(counts) < 118
    gen = BlockwiseMaskGenerator(224, 16, num_masking_patches=75)
    counts = [m.sum() for m in _masks(gen, range(300))]
    assert max(counts) == 75 and min(counts) >= 60


def test_blockwise_masks_are_blocky():
    # With min block 16, masked patches come in rectangles: most masked
    # patches have a masked 4-neighbour (random masks would rarely).
    gen = BlockwiseMaskGenerator(224, 16, num_masking_patches=75)
    for m in _masks(gen, range(10)):
        padded = np.pad(m, 1)
        neighbours = (padded[:-2, 1:-1] + padded[2:, 1:-1] +
                      padded[1:-1, :-2] + padded[1:-1, 2:])
        assert (neighbours[m == 1] > 0).all()


def test_blockwise_small_grid():
    gen = BlockwiseMaskGenerator(32, 4, num_masking_patches=30,
                                 min_num_patches=4, exact_count=True)
    assert all(m.shape == (8, 8) and m.sum() == 30 for m in _masks(gen))


@pytest.mark.parametrize('cfg', [
    dict(type='RandomMaskGenerator', mask_ratio=0.75),
    dict(type='RandomMaskGenerator', mask_ratio=0.6, mask_patch_size=32),
    dict(type='BlockwiseMaskGenerator', num_masking_patches=118,
         exact_count=True),
    dict(type='BlockwiseMaskGenerator', num_masking_patches=75),
])
def test_seeded_reproducibility(cfg):
    gen = TRANSFORMS.build(cfg)
    set_random_seed(3)
    a = [gen({})['mask'] for _ in range(4)]
    set_random_seed(3)
    b = [gen({})['mask'] for _ in range(4)]
    set_random_seed(4)
    c = [gen({})['mask'] for _ in range(4)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    # Successive draws under one seed differ.
    assert not np.array_equal(a[0], a[1])


@pytest.mark.parametrize('kwargs, match', [
    (dict(input_size=225, patch_size=16), 'not divisible by patch_size'),
    (dict(input_size=224, patch_size=16, mask_patch_size=24),
     'multiple of patch_size'),
    (dict(input_size=240, patch_size=16, mask_patch_size=32),
     'not divisible by mask_patch_size'),
    (dict(mask_ratio=0.0), r'mask_ratio must be in \(0, 1\)'),
    (dict(mask_ratio=1.0), r'mask_ratio must be in \(0, 1\)'),
    (dict(mask_ratio=-0.5), r'mask_ratio must be in \(0, 1\)'),
    (dict(input_size=32, patch_size=16, mask_ratio=0.9),
     'no patch stays visible'),
    (dict(patch_size=0), 'patch_size must be a positive int'),
    (dict(input_size=(224, 224, 3)), 'input_size must be'),
])
def test_random_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RandomMaskGenerator(**kwargs)


@pytest.mark.parametrize('kwargs, match', [
    (dict(input_size=100, patch_size=16), 'not divisible by patch_size'),
    (dict(num_masking_patches=196), r'num_masking_patches must be in'),
    (dict(num_masking_patches=500), r'num_masking_patches must be in'),
    (dict(num_masking_patches=0), r'num_masking_patches must be in'),
    (dict(num_masking_patches=10, min_num_patches=16),
     'min_num_patches 16 > num_masking_patches 10'),
    (dict(min_num_patches=0), 'min_num_patches must be >= 1'),
    (dict(num_masking_patches=190, min_num_patches=180),
     'largest block'),
    (dict(min_num_patches=16, max_num_patches=8), 'max_num_patches 8 <'),
    (dict(min_aspect=0), 'min_aspect must be > 0'),
    (dict(min_aspect=2.0, max_aspect=1.0), 'max_aspect 1.0 < min_aspect'),
    (dict(input_size=16, patch_size=16, num_masking_patches=1,
          min_num_patches=1), 'too small'),
])
def test_blockwise_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BlockwiseMaskGenerator(**kwargs)


def test_blockwise_hard_aspect_terminates():
    # Blocks of at least 40 patches with aspect ratio ~10 never fit a 8x8
    # grid: the generator stops instead of looping, and tops up if asked.
    gen = BlockwiseMaskGenerator(32, 4, num_masking_patches=45,
                                 min_num_patches=40, min_aspect=10,
                                 max_aspect=10)
    assert _masks(gen, [0])[0].sum() == 0
    gen.exact_count = True
    assert _masks(gen, [0])[0].sum() == 45


@pytest.mark.parametrize('gen_cfg, count', [
    (dict(type='RandomMaskGenerator', input_size=32, patch_size=8,
          mask_ratio=0.75), 12),
    (dict(type='BlockwiseMaskGenerator', input_size=32, patch_size=4,
          num_masking_patches=30, min_num_patches=4, exact_count=True), 30),
])
def test_pack_inputs_carries_mask(gen_cfg, count):
    pipeline = [TRANSFORMS.build(gen_cfg),
                TRANSFORMS.build(dict(type='PackInputs',
                                      algorithm_keys=['mask']))]
    np.random.seed(0)
    samples = []
    for _ in range(2):
        results = dict(img=np.zeros((32, 32, 3), np.uint8), gt_label=1)
        for t in pipeline:
            results = t(results)
        assert results['inputs'].shape == (3, 32, 32)
        samples.append(results['data_samples'])
    assert 'mask' in samples[0]
    mask = torch.as_tensor(samples[0].mask)
    assert mask.sum() == count
    stacked = masks_from_data_samples(samples)
    assert stacked.dtype == torch.bool
    assert stacked.shape[0] == 2
    assert stacked.sum(1).tolist() == [count, count]
