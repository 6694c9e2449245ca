"""One head for every masked-prediction target: target map + loss + mask."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmpretrain.registry import MODELS
from ..utils import CheckedLoadingMixin


def patch_tokens_to_map(pred: torch.Tensor, grid, cells: int) -> torch.Tensor:
    """(B, L, cells^2 * C) per-patch predictions, values in (row, col,
    channel) order as MAE's patchify, -> (B, C, h * cells, w * cells)."""
    B, L, D = pred.shape
    h, w = grid
    if L != h * w or D % (cells * cells):
        raise ValueError(f'cannot lay out predictions {tuple(pred.shape)} on '
                         f'a {h}x{w} grid with {cells}x{cells} cells')
    C = D // (cells * cells)
    x = pred.reshape(B, h, w, cells, cells, C)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(B, C, h * cells, w * cells)


def mask_to_target_grid(mask: torch.Tensor, grid, patch_size: int,
                        stride: int) -> torch.Tensor:
    """Weight of each target location: the fraction of its pixels that are
    masked, (B, H / stride, W / stride) float.

    ``mask`` is the patch mask, (B, L) or (B, h, w), 1 = masked. For targets
    finer than a patch this is 0 / 1 (the patch's value); for coarser ones
    (a target cell covering several patches) it is their masked fraction.
    """
    B = mask.shape[0]
    mask = mask.reshape(B, 1, *grid).float()
    if stride <= patch_size:
        if patch_size % stride:
            raise ValueError(f'patch size {patch_size} is not a multiple of '
                             f'the target stride {stride}')
        r = patch_size // stride
        return mask.repeat_interleave(r, 2).repeat_interleave(r, 3)[:, 0]
    if stride % patch_size:
        raise ValueError(f'target stride {stride} is not a multiple of the '
                         f'patch size {patch_size}')
    return F.avg_pool2d(mask, stride // patch_size)[:, 0]


@MODELS.register_module()
class MIMTargetHead(CheckedLoadingMixin, BaseModule):
    """Target, loss and mask of a masked-prediction model.

    ``loss(pred, inputs, mask)`` builds the target map of ``inputs`` with
    the target generator (``PixelTarget``, ``ColorBinTarget``,
    ``ColorPaletteTarget``, ``PatchPCATarget``, ``DVAETokenTarget``), lays
    the predictions on the same grid and averages the per-location loss
    over the masked locations (``loss_on='masked'``) or all of them
    (``'all'``):

    - regression targets: ``criterion`` ``'L1'`` or ``'L2'`` per value,
      ``L = sum_{loc, c} err * w / (sum_loc w + eps) / C``, ``w`` the
      masked fraction of a location (0 / 1 unless a target cell spans
      several patches). With full-resolution pixels, L1 and ``eps=1e-5``
      this is SimMIM's loss; with L2, ``eps=0`` and per-patch normalised
      pixels it is MAE's.
    - classification targets: cross-entropy per location and group (e.g.
      colour channel), averaged over groups, then the same weighted mean.

    Predictions are either a map ``(B, pred_channels, H / stride,
    W / stride)`` (SimMIM's decoders) or per-patch tokens ``(B, L,
    (patch_size / stride)^2 * pred_channels)`` in MAE's (row, col, channel)
    order (MAE's decoder; the target must not be coarser than a patch).

    Args:
        target (dict): Target generator config.
        criterion (str): ``'L1'`` or ``'L2'`` for regression targets.
        loss_on (str): ``'masked'`` or ``'all'`` locations.
        patch_size (int): The model's patch size (the mask's unit).
        eps (float): Added to the denominator. Defaults to 1e-5 (SimMIM).
    """

    def __init__(self,
                 target: dict = dict(type='PixelTarget'),
                 criterion: str = 'L1',
                 loss_on: str = 'masked',
                 patch_size: int = 16,
                 eps: float = 1e-5,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if criterion not in ('L1', 'L2'):
            raise ValueError(f"criterion must be 'L1' or 'L2', got "
                             f'{criterion!r}')
        if loss_on not in ('masked', 'all'):
            raise ValueError(f"loss_on must be 'masked' or 'all', got "
                             f'{loss_on!r}')
        target = dict(target)
        target.setdefault('_scope_', 'mmpretrain')
        self.target = MODELS.build(target)
        self.criterion = criterion
        self.loss_on = loss_on
        self.patch_size = patch_size
        self.eps = eps

    @property
    def stride(self) -> int:
        return self.target.stride

    @property
    def pred_channels(self) -> int:
        """Prediction channels per target location."""
        return self.target.pred_channels

    @property
    def values_per_patch(self) -> int:
        """What an MAE-style decoder predicts per patch."""
        if self.stride > self.patch_size:
            raise ValueError(f'a per-patch decoder cannot predict a target '
                             f'coarser (stride {self.stride}) than the patch '
                             f'({self.patch_size})')
        return (self.patch_size // self.stride)**2 * self.pred_channels

    def prediction_map(self, pred: torch.Tensor, grid) -> torch.Tensor:
        if pred.dim() == 3:
            pred = patch_tokens_to_map(pred, grid,
                                       self.patch_size // self.stride)
        return pred

    def to_image(self, pred: torch.Tensor,
                 inputs: torch.Tensor) -> torch.Tensor:
        """Pixel predictions as an image (B, C, H, W) in the input's space;
        per-patch normalised ones de-normalised with the true patch's mean
        and (unbiased) variance, as MAE's pictures."""
        target = self.target
        if type(target).__name__ != 'PixelTarget' or target.stride != 1:
            raise NotImplementedError(
                f'{type(target).__name__} (stride {target.stride}) targets '
                'are not full-resolution pixels')
        grid = (inputs.shape[-2] // self.patch_size,
                inputs.shape[-1] // self.patch_size)
        image = self.prediction_map(pred, grid).float()
        size = target.norm_patch_size
        if size:
            B, C, H, W = inputs.shape
            blocks = inputs.float().reshape(B, C, H // size, size, W // size,
                                            size)
            mean = blocks.mean(dim=(1, 3, 5), keepdim=True)
            var = blocks.var(dim=(1, 3, 5), keepdim=True)
            image = (image.reshape(blocks.shape) * (var + target.eps)**.5 +
                     mean).reshape(B, C, H, W)
        return image

    def loss(self, pred: torch.Tensor, inputs: torch.Tensor,
             mask: torch.Tensor) -> torch.Tensor:
        """
        Args:
            pred (Tensor): Prediction map or per-patch tokens (see above).
            inputs (Tensor): Normalised images (B, C, H, W).
            mask (Tensor): Patch mask (B, L) or (B, h, w), 1 = masked.
        """
        grid = (inputs.shape[-2] // self.patch_size,
                inputs.shape[-1] // self.patch_size)
        target = self.target(inputs)
        pred = self.prediction_map(pred, grid).float()
        if pred.shape[1] != self.pred_channels or \
                pred.shape[-2:] != target.shape[-2:]:
            raise ValueError(
                f'predictions {tuple(pred.shape[1:])} do not fit the target: '
                f'{self.pred_channels} channels on a '
                f'{tuple(target.shape[-2:])} grid')
        if self.loss_on == 'masked':
            weight = mask_to_target_grid(mask, grid, self.patch_size,
                                         self.stride).to(pred.device)
        else:
            weight = pred.new_ones(pred.shape[0], *pred.shape[-2:])
        if self.target.kind == 'classification':
            B, G = target.shape[:2]
            logits = pred.reshape(B, G, -1, *pred.shape[-2:])
            err = F.cross_entropy(
                logits.flatten(0, 1), target.flatten(0, 1),
                reduction='none').view(B, G, *pred.shape[-2:])
        elif self.criterion == 'L1':
            err = (pred - target).abs()
        else:
            err = (pred - target)**2
        per_location = err.mean(dim=1)
        return (per_location * weight).sum() / (weight.sum() + self.eps)
