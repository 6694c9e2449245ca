"""Prediction targets of masked image modeling, as dense maps.

Every target generator turns the (normalised) input images (B, 3, H, W) into
a map on a grid of ``stride`` image pixels:

- regression targets: ``(B, C, H / stride, W / stride)`` float
  (``kind = 'regression'``, ``num_channels = C``);
- classification targets: ``(B, G, H / stride, W / stride)`` int64 class
  indices in ``[0, num_classes)`` (``kind = 'classification'``, ``G`` groups,
  e.g. the three colour channels of per-channel colour bins).

``pred_channels`` is what a prediction map at the same grid needs: ``C`` or
``G * num_classes``. :class:`~mmmim.models.heads.MIMTargetHead` combines a
target with a loss; SimMIM predicts such maps directly, MAE predicts them
per patch (``(patch_size / stride)^2 * pred_channels`` values).

The targets of the SimMIM paper (pixels at full and lower resolution, colour
bins, iGPT colour clusters, dVAE tokens), the MAE paper (pixels, normalised
pixels, PCA coefficients of patches, dVAE tokens) and ViT's masked patch
prediction (3-bit mean colour, 4x4 down-sampled 3-bit patch) are the
classes below. Colours are computed on the de-normalised image (0-255, the
data preprocessor's ``mean`` / ``std``) in the model's channel order.
"""
import os.path as osp
from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmpretrain.registry import MODELS
from mmmim.utils.checkpoint import load_checkpoint_file, unwrap_state_dict

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


class MIMTarget(BaseModule):
    """Base of the dense targets (see the module docstring)."""

    kind = 'regression'
    #: image pixels per target location
    stride = 1
    #: regression channels, or class-index groups for classification
    num_channels = 3
    num_classes = None

    @property
    def pred_channels(self) -> int:
        if self.kind == 'classification':
            return self.num_channels * self.num_classes
        return self.num_channels

    def _denormalise_init(self, mean, std):
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32)
                             .view(1, -1, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32)
                             .view(1, -1, 1, 1), persistent=False)

    def to_uint8_range(self, inputs: torch.Tensor) -> torch.Tensor:
        """Normalised inputs -> colour values in [0, 255] (float)."""
        return (inputs.float() * self.std + self.mean).clamp(0, 255)

    def check_input(self, inputs: torch.Tensor) -> None:
        if inputs.shape[-2] % self.stride or inputs.shape[-1] % self.stride:
            raise ValueError(
                f'{type(self).__name__}: image size {tuple(inputs.shape[-2:])}'
                f' is not divisible by the target stride {self.stride}')


def _avg_pool(x: torch.Tensor, factor: int) -> torch.Tensor:
    return F.avg_pool2d(x, factor) if factor > 1 else x


def normalise_blocks(x: torch.Tensor, size: int,
                     eps: float = 1e-6) -> torch.Tensor:
    """Standardise every ``size x size`` block of a (B, C, H, W) map over its
    ``size * size * C`` values with the unbiased variance (MAE's norm_pix)."""
    B, C, H, W = x.shape
    if H % size or W % size:
        raise ValueError(f'map {H}x{W} is not divisible into {size}-blocks')
    blocks = x.reshape(B, C, H // size, size, W // size, size)
    mean = blocks.mean(dim=(1, 3, 5), keepdim=True)
    var = blocks.var(dim=(1, 3, 5), keepdim=True)  # unbiased, as MAE
    return ((blocks - mean) / (var + eps)**.5).reshape(B, C, H, W)


@MODELS.register_module()
class PixelTarget(MIMTarget):
    """Pixels of the normalised image, optionally at lower resolution.

    Args:
        downsample (int): Average-pool the image by this factor (SimMIM's
            target resolution ablation: 1 = full resolution, 2 ... 32).
        norm_patch_size (int, optional): Standardise every
            ``norm_patch_size``-pixel patch (of the full-resolution image)
            by its mean and unbiased variance, as MAE's ``norm_pix``; must
            be a multiple of ``downsample``.
        eps (float): Added to the variance. Defaults to 1e-6 (MAE).
        in_channels (int): Image channels. Defaults to 3.
    """

    def __init__(self,
                 downsample: int = 1,
                 norm_patch_size: Optional[int] = None,
                 eps: float = 1e-6,
                 in_channels: int = 3,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if downsample < 1:
            raise ValueError(f'downsample must be >= 1, got {downsample}')
        if norm_patch_size is not None and norm_patch_size % downsample:
            raise ValueError(f'norm_patch_size {norm_patch_size} is not a '
                             f'multiple of downsample {downsample}')
        self.stride = int(downsample)
        self.norm_patch_size = norm_patch_size
        self.eps = eps
        self.num_channels = in_channels

    @torch.no_grad()
    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.check_input(inputs)
        target = _avg_pool(inputs.float(), self.stride)
        if self.norm_patch_size:
            target = normalise_blocks(target,
                                      self.norm_patch_size // self.stride,
                                      self.eps)
        return target


@MODELS.register_module()
class ColorBinTarget(MIMTarget):
    """Quantised colours: per-channel bins (SimMIM) or joint bins (ViT).

    The de-normalised colour ``v`` in [0, 255] of each channel (after
    average pooling by ``downsample``: a mean colour) falls into bin
    ``floor(v * num_bins / 256)`` (clamped to ``num_bins - 1``).

    - ``joint=False``: one class index per channel, ``num_bins`` classes
      each (SimMIM's 8-bin and 256-bin targets); cross-entropy per channel.
    - ``joint=True``: one class per colour, ``b_0 * n^2 + b_1 * n + b_2``
      with ``n^3`` classes (ViT's 3-bit colour: ``num_bins=8``, 512
      classes).

    Args:
        num_bins (int): Bins per channel.
        joint (bool): Joint colour classes instead of per-channel classes.
        downsample (int): Average-pool factor (ViT: 16 = the patch's mean
            colour, 4 = a 4x4 down-sampled 16-px patch).
        mean, std (sequence): The data preprocessor's normalisation.
    """

    kind = 'classification'

    def __init__(self,
                 num_bins: int = 8,
                 joint: bool = False,
                 downsample: int = 1,
                 mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not 2 <= num_bins <= 256:
            raise ValueError(f'num_bins must be in [2, 256], got {num_bins}')
        self.num_bins = int(num_bins)
        self.joint = bool(joint)
        self.stride = int(downsample)
        channels = len(mean)
        self.num_channels = 1 if joint else channels
        self.num_classes = self.num_bins**channels if joint else self.num_bins
        self._denormalise_init(mean, std)

    @torch.no_grad()
    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.check_input(inputs)
        colours = _avg_pool(self.to_uint8_range(inputs), self.stride)
        bins = (colours * self.num_bins / 256.).floor().long().clamp(
            0, self.num_bins - 1)
        if not self.joint:
            return bins
        index = torch.zeros_like(bins[:, :1])
        for c in range(bins.shape[1]):
            index = index * self.num_bins + bins[:, c:c + 1]
        return index


def _load_array(source, key: str) -> torch.Tensor:
    """A tensor from a list / array / tensor, or from a .npy / .npz / .pt
    file (``key`` inside .npz and .pt dicts)."""
    if isinstance(source, (list, tuple, np.ndarray, torch.Tensor)):
        return torch.as_tensor(np.asarray(source), dtype=torch.float32)
    if not isinstance(source, str) or not osp.isfile(source):
        raise FileNotFoundError(
            f'{key} file not found: {source!r} (compute it with '
            'tools/analysis/fit_mim_targets.py)')
    if source.endswith('.npy'):
        return torch.from_numpy(np.load(source)).float()
    if source.endswith('.npz'):
        with np.load(source) as data:
            return torch.from_numpy(data[key]).float()
    data = torch.load(source, map_location='cpu', weights_only=True)
    return torch.as_tensor(data[key] if isinstance(data, dict) else data,
                           dtype=torch.float32)


@MODELS.register_module()
class ColorPaletteTarget(MIMTarget):
    """Index of the nearest palette colour (iGPT's colour clusters).

    Each (average-pooled) de-normalised colour is assigned the palette entry
    at the smallest Euclidean distance (ties: lowest index); the palette is
    a (K, C) array in [0, 255] in the model's channel order, e.g. the
    512-colour k-means palette of ``tools/analysis/fit_mim_targets.py
    palette``.

    Args:
        palette (str | array): (K, C) palette, or a .npy / .npz (key
            ``palette``) / .pt file holding it.
        downsample (int): Average-pool factor.
        mean, std (sequence): The data preprocessor's normalisation.
        chunk_size (int): Colours compared per block (memory bound).
    """

    kind = 'classification'
    num_channels = 1

    def __init__(self,
                 palette: Union[str, Sequence],
                 downsample: int = 1,
                 mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD,
                 chunk_size: int = 65536,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        palette = _load_array(palette, 'palette')
        if palette.ndim != 2 or palette.shape[1] != len(mean):
            raise ValueError(f'palette must be (K, {len(mean)}), got '
                             f'{tuple(palette.shape)}')
        self.register_buffer('palette', palette, persistent=False)
        self.num_classes = palette.shape[0]
        self.stride = int(downsample)
        self.chunk_size = chunk_size
        self._denormalise_init(mean, std)

    @torch.no_grad()
    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.check_input(inputs)
        colours = _avg_pool(self.to_uint8_range(inputs), self.stride)
        B, C, H, W = colours.shape
        flat = colours.permute(0, 2, 3, 1).reshape(-1, C)
        return nearest_palette_index(flat, self.palette,
                                     self.chunk_size).view(B, 1, H, W)


def nearest_palette_index(colours: torch.Tensor, palette: torch.Tensor,
                          chunk_size: int = 65536) -> torch.Tensor:
    """(N, C) colours -> (N,) index of the nearest of the (K, C) palette."""
    out = []
    sq = (palette**2).sum(1)
    for start in range(0, colours.shape[0], chunk_size):
        x = colours[start:start + chunk_size]
        # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2; ||x||^2 is the same for
        # every c
        out.append((sq - 2 * x @ palette.T).argmin(dim=1))
    return torch.cat(out) if out else colours.new_zeros(0, dtype=torch.long)


@MODELS.register_module()
class PatchPCATarget(MIMTarget):
    """The leading PCA coefficients of each patch (MAE's PCA target).

    With a basis (``mean`` (D,), ``components`` (K, D), orthonormal rows,
    D = patch_size^2 * C values of a patch in MAE's (row, col, channel)
    order of the normalised image) from ``tools/analysis/fit_mim_targets.py
    pca``: coefficients ``(patch - mean) @ components[:num_components].T``,
    one location per patch.

    Args:
        basis (str | dict): A .npz / .pt file (keys ``mean``,
            ``components``) or a dict with those arrays.
        patch_size (int): The model's patch size.
        num_components (int, optional): Leading components used (MAE: 96);
            all by default.
    """

    def __init__(self,
                 basis: Union[str, dict],
                 patch_size: int = 16,
                 num_components: Optional[int] = None,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(basis, dict):
            mean = _load_array(basis['mean'], 'mean')
            components = _load_array(basis['components'], 'components')
        else:
            mean = _load_array(basis, 'mean')
            components = _load_array(basis, 'components')
        if num_components is not None:
            if num_components > components.shape[0]:
                raise ValueError(f'the basis has {components.shape[0]} '
                                 f'components, asked for {num_components}')
            components = components[:num_components]
        if components.shape[1] % (patch_size * patch_size):
            raise ValueError(f'basis vectors of length {components.shape[1]} '
                             f'do not fit {patch_size}-px patches')
        self.register_buffer('basis_mean', mean.view(-1), persistent=False)
        self.register_buffer('components', components, persistent=False)
        self.stride = int(patch_size)
        self.num_channels = components.shape[0]

    def patchify(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, h, w, p*p*C) in (row, col, channel) order."""
        B, C, H, W = inputs.shape
        p = self.stride
        x = inputs.reshape(B, C, H // p, p, W // p, p)
        return x.permute(0, 2, 4, 3, 5, 1).reshape(B, H // p, W // p, -1)

    @torch.no_grad()
    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.check_input(inputs)
        patches = self.patchify(inputs.float())
        if patches.shape[-1] != self.components.shape[1]:
            raise ValueError(f'patches have {patches.shape[-1]} values, the '
                             f'basis {self.components.shape[1]}')
        coeffs = (patches - self.basis_mean) @ self.components.T
        return coeffs.permute(0, 3, 1, 2).contiguous()


@MODELS.register_module()
class DVAETokenTarget(MIMTarget):
    """Discrete tokens of a dVAE image tokenizer (BEiT's DALL-E encoder).

    The tokenizer (mmpretrain's ``'DALL-E'`` encoder by default, frozen, in
    eval mode) reads the image de-normalised to [0, 1], mapped as DALL-E
    expects (``0.8 x + 0.1``, the logit-Laplace map) and resized
    (bilinear, antialiased) so that its 8x down-sampling gives one token per
    ``stride`` pixels of the model's input (BEiT: 224 px -> 112 px -> 14 x 14
    tokens for 16-px patches); the target is the arg-max token.

    Args:
        checkpoint (str): The tokenizer's weights (a local file the user
            provides, e.g. BEiT's DALL-E encoder converted for mmpretrain);
            required, no download.
        tokenizer (dict): The tokenizer config. Defaults to
            ``dict(type='DALL-E')`` (8192 tokens).
        stride (int): Image pixels per token. Defaults to 16.
        tokenizer_stride (int): The tokenizer's own down-sampling (8).
        mean, std (sequence): The data preprocessor's normalisation.
    """

    kind = 'classification'
    num_channels = 1

    def __init__(self,
                 checkpoint: Optional[str],
                 tokenizer: dict = dict(type='DALL-E'),
                 stride: int = 16,
                 tokenizer_stride: int = 8,
                 mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if checkpoint is None or not osp.isfile(checkpoint):
            raise FileNotFoundError(
                f'dVAE tokenizer weights not found: {checkpoint!r}; give the '
                'path of a local file (nothing is downloaded)')
        tokenizer = dict(tokenizer)
        tokenizer.setdefault('_scope_', 'mmpretrain')
        self.tokenizer = MODELS.build(tokenizer)
        # strict: every tokenizer weight must come from the file
        self.tokenizer.load_state_dict(
            unwrap_state_dict(load_checkpoint_file(checkpoint)))
        self.tokenizer.requires_grad_(False)
        self.tokenizer.eval()
        self.checkpoint = checkpoint
        self.stride = int(stride)
        self.tokenizer_stride = int(tokenizer_stride)
        self.num_classes = int(getattr(self.tokenizer, 'vocab_size', None) or
                               self._vocab_size())
        self._denormalise_init(mean, std)

    def _vocab_size(self) -> int:
        convs = [m for m in self.tokenizer.modules()
                 if isinstance(m, nn.Conv2d) or hasattr(m, 'w')]
        last = convs[-1]
        weight = last.weight if isinstance(last, nn.Conv2d) else last.w
        return weight.shape[0]

    def init_weights(self) -> None:
        # the tokenizer keeps the weights loaded from ``checkpoint``
        pass

    def train(self, mode: bool = True):
        super().train(mode)
        self.tokenizer.eval()
        return self

    def tokenizer_input(self, inputs: torch.Tensor) -> torch.Tensor:
        """The tokenizer's input: [0, 1] image, ``0.8 x + 0.1``, resized."""
        x = self.to_uint8_range(inputs) / 255.
        h = inputs.shape[-2] // self.stride * self.tokenizer_stride
        w = inputs.shape[-1] // self.stride * self.tokenizer_stride
        if (h, w) != tuple(x.shape[-2:]):
            x = F.interpolate(x, size=(h, w), mode='bilinear',
                              align_corners=False, antialias=True)
        return 0.8 * x + 0.1

    @torch.no_grad()
    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.check_input(inputs)
        logits = self.tokenizer(self.tokenizer_input(inputs))
        return logits.argmax(dim=1, keepdim=True)


# --------------------------------------------------------------- fitting
def fit_color_palette(colours: torch.Tensor,
                      num_colours: int = 512,
                      iters: int = 20,
                      seed: int = 0) -> torch.Tensor:
    """k-means palette of (N, C) colours (iGPT): k-means++ seeding, then
    Lloyd iterations; an emptied cluster keeps its previous centre.

    Returns:
        Tensor: (num_colours, C) float32 centres, sorted by luminance-like
        order (sum over channels) for readability.
    """
    colours = colours.float()
    n = colours.shape[0]
    if n < num_colours:
        raise ValueError(f'{n} colours cannot give {num_colours} clusters')
    gen = torch.Generator().manual_seed(seed)
    centres = colours[torch.randint(n, (1, ), generator=gen)]
    dist = ((colours - centres[0])**2).sum(1)
    for _ in range(1, num_colours):
        # k-means++: the next centre with probability ~ squared distance
        total = dist.sum()
        if total <= 0:
            idx = torch.randint(n, (1, ), generator=gen)
        else:
            idx = torch.multinomial(dist / total, 1, generator=gen)
        centres = torch.cat([centres, colours[idx]])
        dist = torch.minimum(dist, ((colours - colours[idx])**2).sum(1))
    for _ in range(iters):
        assign = nearest_palette_index(colours, centres)
        sums = torch.zeros_like(centres).index_add_(0, assign, colours)
        counts = torch.bincount(assign, minlength=num_colours).float()
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    return centres[centres.sum(1).argsort()]


def fit_patch_pca(patches: torch.Tensor):
    """PCA of (N, D) patch vectors: ``(mean (D,), components (D, D),
    variances (D,))``, components as rows sorted by decreasing variance
    (sign: largest-magnitude entry of each component positive)."""
    patches = patches.double()
    mean = patches.mean(0)
    centred = patches - mean
    cov = centred.T @ centred / max(patches.shape[0] - 1, 1)
    variances, vectors = torch.linalg.eigh(cov)
    order = variances.argsort(descending=True)
    variances, vectors = variances[order], vectors[:, order]
    components = vectors.T
    idx = components.abs().argmax(dim=1)
    signs = components.gather(1, idx[:, None]).sign()
    signs[signs == 0] = 1
    components = components * signs
    return mean.float(), components.float(), variances.float()
