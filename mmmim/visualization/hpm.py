"""HPM pictures (the paper's fig. 2): the teacher's predicted-loss map and the
easy-to-hard mask it generates, one row per image."""
from typing import Optional, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .reconstruction import tile_panels, to_uint8_images


def _heatmap(values: torch.Tensor, grid: Sequence[int],
             size: Sequence[int]) -> np.ndarray:
    """(B, L) scores -> (B, H, W, 3) uint8 RGB heat maps, min-max per image."""
    v = values.detach().float().cpu()
    lo = v.min(dim=1, keepdim=True).values
    hi = v.max(dim=1, keepdim=True).values
    v = (v - lo) / (hi - lo).clamp(min=1e-12)
    v = v.view(-1, 1, *grid)
    v = F.interpolate(v, size=tuple(size), mode='nearest')[:, 0]
    v = (v * 255).round().to(torch.uint8).numpy()
    return np.stack([
        cv2.applyColorMap(m, cv2.COLORMAP_JET)[..., ::-1] for m in v])


@torch.no_grad()
def hpm_mask_grid(model,
                  inputs: torch.Tensor,
                  mean: Sequence[float],
                  std: Sequence[float],
                  position: Optional[float] = None,
                  total: Optional[float] = None,
                  gap: int = 2,
                  scale: int = 1,
                  generator: Optional[torch.Generator] = None):
    """Render input | teacher's predicted losses | mask, one row per image.

    The mask panel greys the masked patches and tints the K hard patches
    (the highest predicted losses, always masked) red.

    Args:
        model: an ``HPMPretrainer`` (its ``target_generator`` holds the
            teacher).
        inputs: normalised images (B, C, H, W).
        mean, std: the data preprocessor's normalisation, to undo it.
        position, total: schedule position (epoch / max_epochs) for K;
            default: end of the ramp (K = M * hard_ratio).
        gap, scale: picture layout (scale = integer upscaling).
        generator: for the random part of the mask.

    Returns:
        tuple: (canvas (rows, cols, 3) uint8 RGB, scores (B, L),
        mask (B, L) bool, K).
    """
    model.eval()
    tg = model.target_generator
    scores, _ = tg(inputs)
    mask = tg.generate_mask(scores, position, total, generator)
    L = scores.shape[1]
    k = tg.num_hard(L, position, total)
    hard = torch.zeros_like(mask)
    if k:
        hard.scatter_(1, scores.topk(k, dim=1).indices, True)
    grid = model.backbone.patch_resolution
    size = inputs.shape[-2:]

    def up(m):
        m = m.view(-1, 1, *grid).float()
        return F.interpolate(m, size=tuple(size),
                             mode='nearest')[:, 0].bool().numpy()

    images = to_uint8_images(inputs, mean, std)
    if images.shape[-1] == 1:
        images = images.repeat(3, axis=-1)
    heat = _heatmap(scores, grid, size)
    masked = images.copy()
    m_px, h_px = up(mask.cpu()), up(hard.cpu())
    masked[m_px] = 127
    masked[h_px] = (0.5 * masked[h_px] + [127, 0, 0]).astype(np.uint8)
    canvas = tile_panels([images, heat, masked], gap, scale)
    return canvas, scores, mask, k


def render_hpm_figure(model, inputs: torch.Tensor, out_file: str,
                      mean: Sequence[float], std: Sequence[float],
                      **kwargs):
    """Write :func:`hpm_mask_grid`'s picture to ``out_file`` (PNG).

    Returns the same tuple as :func:`hpm_mask_grid`.
    """
    result = hpm_mask_grid(model, inputs, mean, std, **kwargs)
    if not cv2.imwrite(out_file, result[0][..., ::-1]):
        raise IOError(f'could not write {out_file}')
    return result
