"""Patch-mask transforms for masked image modeling (1 = masked, patch grid).

Both transforms write ``results['mask']``, an ``(h, w)`` int array on the
*model's* patch grid, which ``PackInputs(algorithm_keys=['mask'])`` carries to
``data_samples[i].mask``. They draw from numpy's global RNG (``np.random``),
which ``mmengine.runner.set_random_seed`` and mmengine's dataloader
``worker_init_fn`` seed, so masks are reproducible under a config's
``randomness=dict(seed=...)``.

``RandomMaskGenerator`` is mmpretrain's ``SimMIMMaskGenerator`` (the same
draws, the same masks) with checks of its parameters, MAE mode, non-square
images and a count immune to float round-off. ``BlockwiseMaskGenerator``
differs from mmpretrain's ``BEiTMaskGenerator`` (inclusive block offsets as in
BEiT, an exact-count top-up for SIM, parameter checks).
"""
import math
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform

from mmpretrain.datasets.transforms import SimMIMMaskGenerator
from mmpretrain.registry import TRANSFORMS

_EPS = 1e-6


def _pair(value: Union[int, Sequence[int]], name: str) -> Tuple[int, int]:
    """``int`` or ``(h, w)`` -> ``(h, w)`` of positive ints."""
    if isinstance(value, (int, np.integer)):
        pair = (int(value), int(value))
    else:
        pair = tuple(int(v) for v in value)
        if len(pair) != 2:
            raise ValueError(f'{name} must be an int or (h, w), got {value}')
    if min(pair) <= 0:
        raise ValueError(f'{name} must be positive, got {value}')
    return pair


def _grid(input_size: Tuple[int, int], cell: int, input_name: str,
          cell_name: str) -> Tuple[int, int]:
    if input_size[0] % cell or input_size[1] % cell:
        raise ValueError(f'{input_name} {input_size} is not divisible by '
                         f'{cell_name} {cell}')
    return input_size[0] // cell, input_size[1] // cell


def num_masked_patches(num_patches: int, mask_ratio: float) -> int:
    """``ceil(num_patches * mask_ratio)``, immune to float round-off.

    Equals MAE's ``L - int(L * (1 - r))`` whenever the latter is not itself
    hit by round-off: ``196 * 0.75 -> 147``, ``49 * 0.6 -> 30`` (SimMIM).
    A product within 1e-6 of an integer is taken as that integer, so e.g.
    ``100 * 0.07 = 7.000000000000001`` gives 7, not 8.
    """
    product = num_patches * mask_ratio
    nearest = round(product)
    if abs(product - nearest) < _EPS:
        return int(nearest)
    return int(math.ceil(product))


@TRANSFORMS.register_module()
class RandomMaskGenerator(SimMIMMaskGenerator):
    """Uniformly random patch mask with an exact count (MAE and SimMIM).

    mmpretrain's ``SimMIMMaskGenerator`` draws the masks (numpy's
    ``permutation``, then blocks expanded to model patches); this class
    checks the parameters, adds MAE mode and non-square images, and counts
    with :func:`num_masked_patches`.

    * **MAE mode** (``mask_patch_size`` None or equal to ``patch_size``):
      exactly ``ceil(L * mask_ratio)`` of the ``L`` model patches are masked,
      chosen uniformly (147 of 196 for 224 px / patch 16 / ratio 0.75).
    * **SimMIM mode** (``mask_patch_size`` a multiple of ``patch_size``):
      the image is cut into ``mask_patch_size`` blocks, exactly
      ``ceil(num_blocks * mask_ratio)`` blocks are masked, and each block is
      expanded to the ``s x s`` model patches it covers
      (``s = mask_patch_size // patch_size``): 224 / 32 -> 7 x 7 blocks,
      30 masked at ratio 0.6 -> 120 of 196 model patches.

    **Added Keys:** ``mask`` (np.ndarray, int, shape ``(H/p, W/p)``,
    1 = masked).

    Args:
        input_size (int | tuple): Image size ``s`` or ``(h, w)``. Defaults
            to 224.
        patch_size (int): The model's patch size. Defaults to 16.
        mask_ratio (float): Fraction of (mask) patches to hide, in (0, 1).
            Defaults to 0.75.
        mask_patch_size (int, optional): Size of the random masking unit;
            None means ``patch_size`` (MAE mode). Defaults to None.
    """

    def __init__(self,
                 input_size: Union[int, Tuple[int, int]] = 224,
                 patch_size: int = 16,
                 mask_ratio: float = 0.75,
                 mask_patch_size: Optional[int] = None) -> None:
        input_size = _pair(input_size, 'input_size')
        if not isinstance(patch_size, (int, np.integer)) or patch_size <= 0:
            raise ValueError(
                f'patch_size must be a positive int, got {patch_size!r}')
        mask_patch_size = patch_size if mask_patch_size is None \
            else mask_patch_size
        if not isinstance(mask_patch_size,
                          (int, np.integer)) or mask_patch_size <= 0:
            raise ValueError('mask_patch_size must be a positive int, got '
                             f'{mask_patch_size!r}')
        if mask_patch_size % patch_size:
            raise ValueError(f'mask_patch_size {mask_patch_size} must be a '
                             f'multiple of patch_size {patch_size}')
        if not 0 < mask_ratio < 1:
            raise ValueError(f'mask_ratio must be in (0, 1), got {mask_ratio}')
        self.grid = _grid(input_size, patch_size, 'input_size', 'patch_size')
        self.rand_grid = _grid(input_size, mask_patch_size, 'input_size',
                               'mask_patch_size')
        # mmpretrain's attributes (rand_size: the first side; its transform
        # serves square grids), then the full (h, w) ones
        super().__init__(input_size[0], int(mask_patch_size), int(patch_size),
                         float(mask_ratio))
        self.input_size = input_size
        self.patch_size = int(patch_size)
        self.num_units = self.token_count = \
            self.rand_grid[0] * self.rand_grid[1]
        # ceil(L * r) immune to round-off (mmpretrain: np.ceil)
        self.num_masked_units = self.mask_count = num_masked_patches(
            self.num_units, self.mask_ratio)
        if self.num_masked_units >= self.num_units:
            raise ValueError(
                f'mask_ratio {mask_ratio} masks all {self.num_units} '
                f'{self.mask_patch_size}-px patches; no patch stays visible')
        # Model patches masked per image (what the algorithms see).
        self.num_masked = self.num_masked_units * self.scale**2

    def transform(self, results: dict) -> dict:
        """Add ``results['mask']``.

        Args:
            results (dict): Result dict from the previous pipeline step.

        Returns:
            dict: ``results`` with ``mask`` added.
        """
        if self.rand_grid[0] == self.rand_grid[1]:
            return super().transform(results)
        # a non-square grid, which mmpretrain's transform does not take:
        # the same draw, reshaped to (h, w)
        ids = np.random.permutation(self.num_units)[:self.num_masked_units]
        mask = np.zeros(self.num_units, dtype=int)
        mask[ids] = 1
        results['mask'] = mask.reshape(self.rand_grid).repeat(
            self.scale, axis=0).repeat(self.scale, axis=1)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(input_size={self.input_size}, '
                f'patch_size={self.patch_size}, '
                f'mask_ratio={self.mask_ratio}, '
                f'mask_patch_size={self.mask_patch_size}, '
                f'num_masked={self.num_masked})')


@TRANSFORMS.register_module()
class BlockwiseMaskGenerator(BaseTransform):
    """BEiT's block-wise mask, optionally topped up to an exact count (SIM).

    Blocks are rectangles with a random area in ``[min_num_patches,
    remaining]`` (capped by ``max_num_patches``) and a log-uniform aspect
    ratio in ``[min_aspect, max_aspect]``, placed uniformly, strictly smaller
    than the grid; each block gets up to 10 attempts to add at least one new
    patch without exceeding ``num_masking_patches``. The process stops at the
    target count or when a block makes no progress, so the count can fall
    short but never exceeds the target (BEiT, iTPN's CLIP variant). With
    ``exact_count=True`` the shortfall is filled with uniformly random extra
    patches, giving exactly ``num_masking_patches`` (SIM: 118 of 14 x 14).

    **Added Keys:** ``mask`` (np.ndarray, int, shape ``(H/p, W/p)``,
    1 = masked).

    Args:
        input_size (int | tuple): Image size ``s`` or ``(h, w)``. Defaults
            to 224.
        patch_size (int): The model's patch size. Defaults to 16.
        num_masking_patches (int): Target number of masked patches.
            Defaults to 75.
        min_num_patches (int): Minimum block area in patches. Defaults to 16.
        max_num_patches (int, optional): Maximum block area; None means
            ``num_masking_patches``. Defaults to None.
        min_aspect (float): Minimum block aspect ratio (h / w). Defaults to
            0.3.
        max_aspect (float, optional): Maximum aspect ratio; None means
            ``1 / min_aspect``. Defaults to None.
        exact_count (bool): Top up with random patches to exactly
            ``num_masking_patches``. Defaults to False.
    """

    def __init__(self,
                 input_size: Union[int, Tuple[int, int]] = 224,
                 patch_size: int = 16,
                 num_masking_patches: int = 75,
                 min_num_patches: int = 16,
                 max_num_patches: Optional[int] = None,
                 min_aspect: float = 0.3,
                 max_aspect: Optional[float] = None,
                 exact_count: bool = False) -> None:
        self.input_size = _pair(input_size, 'input_size')
        if not isinstance(patch_size, (int, np.integer)) or patch_size <= 0:
            raise ValueError(
                f'patch_size must be a positive int, got {patch_size!r}')
        self.patch_size = int(patch_size)
        self.height, self.width = _grid(self.input_size, self.patch_size,
                                        'input_size', 'patch_size')
        self.num_patches = self.height * self.width
        if self.height < 2 or self.width < 2:
            raise ValueError(f'the {self.height} x {self.width} patch grid is '
                             'too small for blocks (they must be strictly '
                             'smaller than the grid)')
        if not 0 < num_masking_patches < self.num_patches:
            raise ValueError(
                f'num_masking_patches must be in [1, {self.num_patches - 1}] '
                f'for a {self.height} x {self.width} grid, got '
                f'{num_masking_patches}')
        if min_num_patches < 1:
            raise ValueError(
                f'min_num_patches must be >= 1, got {min_num_patches}')
        if min_num_patches > num_masking_patches:
            raise ValueError(f'min_num_patches {min_num_patches} > '
                             f'num_masking_patches {num_masking_patches}')
        max_block = (self.height - 1) * (self.width - 1)
        if min_num_patches > max_block:
            raise ValueError(
                f'min_num_patches {min_num_patches} exceeds the largest block '
                f'({max_block} patches) that fits strictly inside the '
                f'{self.height} x {self.width} grid')
        max_num_patches = num_masking_patches if max_num_patches is None \
            else max_num_patches
        if max_num_patches < min_num_patches:
            raise ValueError(f'max_num_patches {max_num_patches} < '
                             f'min_num_patches {min_num_patches}')
        if min_aspect <= 0:
            raise ValueError(f'min_aspect must be > 0, got {min_aspect}')
        max_aspect = 1 / min_aspect if max_aspect is None else max_aspect
        if max_aspect < min_aspect:
            raise ValueError(
                f'max_aspect {max_aspect} < min_aspect {min_aspect}')
        self.num_masking_patches = int(num_masking_patches)
        self.min_num_patches = int(min_num_patches)
        self.max_num_patches = int(max_num_patches)
        self.min_aspect = float(min_aspect)
        self.max_aspect = float(max_aspect)
        self.log_aspect_ratio = (math.log(min_aspect), math.log(max_aspect))
        self.exact_count = bool(exact_count)

    def _add_block(self, mask: np.ndarray, max_mask_patches: int) -> int:
        """Try (up to 10 times) to mask one block; return the patches added."""
        delta = 0
        for _ in range(10):
            # BEiT's random.uniform(a, b) also accepts a > b (the remaining
            # budget can be below min_num_patches): same formula here.
            low, high = self.min_num_patches, max_mask_patches
            target_area = low + (high - low) * np.random.random_sample()
            aspect_ratio = math.exp(np.random.uniform(*self.log_aspect_ratio))
            h = int(round(math.sqrt(target_area * aspect_ratio)))
            w = int(round(math.sqrt(target_area / aspect_ratio)))
            if w < self.width and h < self.height:
                # BEiT uses random.randint (inclusive upper bound).
                top = np.random.randint(0, self.height - h + 1)
                left = np.random.randint(0, self.width - w + 1)
                block = mask[top:top + h, left:left + w]
                new = h * w - int(block.sum())
                if 0 < new <= max_mask_patches:
                    block[...] = 1
                    delta += new
                if delta > 0:
                    break
        return delta

    def transform(self, results: dict) -> dict:
        """Add ``results['mask']``.

        Args:
            results (dict): Result dict from the previous pipeline step.

        Returns:
            dict: ``results`` with ``mask`` added.
        """
        mask = np.zeros((self.height, self.width), dtype=int)
        count = 0
        while count < self.num_masking_patches:
            budget = min(self.num_masking_patches - count,
                         self.max_num_patches)
            delta = self._add_block(mask, budget)
            if delta == 0:  # no block fits any more: stop (never loops)
                break
            count += delta
        if self.exact_count and count < self.num_masking_patches:
            visible = np.flatnonzero(mask == 0)
            extra = np.random.choice(
                visible, self.num_masking_patches - count, replace=False)
            mask.flat[extra] = 1
        results['mask'] = mask
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(input_size={self.input_size}, '
                f'patch_size={self.patch_size}, '
                f'num_masking_patches={self.num_masking_patches}, '
                f'min_num_patches={self.min_num_patches}, '
                f'max_num_patches={self.max_num_patches}, '
                f'min_aspect={self.min_aspect}, '
                f'max_aspect={self.max_aspect}, '
                f'exact_count={self.exact_count})')


@TRANSFORMS.register_module()
class GridMaskGenerator(BaseTransform):
    """MAE's grid-wise sampling: keep one patch of every ``k x k`` cell.

    Every ``stride x stride`` cell of the patch grid keeps exactly one
    patch visible (the top-left one, or one ``offset`` shared by all cells
    and images when ``random_offset``) and masks the others: ratio
    ``1 - 1 / stride^2`` (MAE paper fig. 6: stride 2, 75 %). The count is
    exact, so MAE's encoder can drop the masked patches.

    **Added Keys:** ``mask`` (np.ndarray, int, ``(H/p, W/p)``, 1 = masked).

    Args:
        input_size (int | tuple): Image size. Defaults to 224.
        patch_size (int): The model's patch size. Defaults to 16.
        stride (int): Cell size in patches (2 keeps one in four).
        random_offset (bool): Draw the kept position in the cell per image
            (the same for every cell of that image) instead of the top-left.
    """

    def __init__(self,
                 input_size: Union[int, Tuple[int, int]] = 224,
                 patch_size: int = 16,
                 stride: int = 2,
                 random_offset: bool = False) -> None:
        self.input_size = _pair(input_size, 'input_size')
        self.patch_size = int(patch_size)
        self.grid = _grid(self.input_size, self.patch_size, 'input_size',
                          'patch_size')
        if int(stride) < 2:
            raise ValueError(f'stride must be >= 2, got {stride}')
        self.stride = int(stride)
        if self.grid[0] % self.stride or self.grid[1] % self.stride:
            raise ValueError(f'the {self.grid} patch grid is not divisible by '
                             f'stride {self.stride}')
        self.random_offset = bool(random_offset)
        self.num_masked = (self.grid[0] * self.grid[1] *
                           (self.stride**2 - 1) // self.stride**2)

    def transform(self, results: dict) -> dict:
        dy = dx = 0
        if self.random_offset:
            dy, dx = np.random.randint(0, self.stride, size=2)
        mask = np.ones(self.grid, dtype=int)
        mask[dy::self.stride, dx::self.stride] = 0
        results['mask'] = mask
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(input_size={self.input_size}, '
                f'patch_size={self.patch_size}, stride={self.stride}, '
                f'random_offset={self.random_offset})')


@TRANSFORMS.register_module()
class SquareMaskGenerator(BaseTransform):
    """One square region of patches (context-encoder style; SimMIM's
    "square" strategy).

    The side is ``round(sqrt(mask_ratio * L))`` patches of a square grid
    (exactly ``side^2`` patches masked; SimMIM's ratios 0.11 / 0.25 / 0.44
    at 192 px are the centred 64 / 96 / 128 px squares); the square is
    centred (``random_position=False``, the paper's) or placed uniformly.

    **Added Keys:** ``mask`` (np.ndarray, int, ``(H/p, W/p)``, 1 = masked).

    Args:
        input_size (int | tuple): Image size. Defaults to 224.
        patch_size (int): The model's patch size. Defaults to 16.
        mask_ratio (float): Target fraction of masked patches, in (0, 1).
        random_position (bool): Uniform position instead of the centre.
    """

    def __init__(self,
                 input_size: Union[int, Tuple[int, int]] = 224,
                 patch_size: int = 16,
                 mask_ratio: float = 0.25,
                 random_position: bool = False) -> None:
        self.input_size = _pair(input_size, 'input_size')
        self.patch_size = int(patch_size)
        self.grid = _grid(self.input_size, self.patch_size, 'input_size',
                          'patch_size')
        if not 0 < mask_ratio < 1:
            raise ValueError(f'mask_ratio must be in (0, 1), got {mask_ratio}')
        side = int(round(math.sqrt(mask_ratio * self.grid[0] * self.grid[1])))
        if not 1 <= side < min(self.grid):
            raise ValueError(f'mask_ratio {mask_ratio} gives a {side}-patch '
                             f'square, which does not fit strictly inside '
                             f'the {self.grid} grid')
        self.mask_ratio = float(mask_ratio)
        self.side = side
        self.num_masked = side * side
        self.random_position = bool(random_position)

    def transform(self, results: dict) -> dict:
        h, w = self.grid
        if self.random_position:
            top = np.random.randint(0, h - self.side + 1)
            left = np.random.randint(0, w - self.side + 1)
        else:
            top, left = (h - self.side) // 2, (w - self.side) // 2
        mask = np.zeros(self.grid, dtype=int)
        mask[top:top + self.side, left:left + self.side] = 1
        results['mask'] = mask
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(input_size={self.input_size}, '
                f'patch_size={self.patch_size}, side={self.side}, '
                f'random_position={self.random_position})')
