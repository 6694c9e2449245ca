"""Reconstruction pictures: input | masked input | reconstruction | reconstruction
with the visible patches pasted back, one row per image."""
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F


def to_uint8_images(images: torch.Tensor, mean: Sequence[float],
                    std: Sequence[float]) -> np.ndarray:
    """(B, C, H, W) normalised tensors -> (B, H, W, C) uint8 arrays."""
    mean = torch.as_tensor(mean, dtype=images.dtype).view(1, -1, 1, 1)
    std = torch.as_tensor(std, dtype=images.dtype).view(1, -1, 1, 1)
    images = (images.detach().cpu() * std + mean).clamp(0, 255)
    return images.round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def pixel_mask(mask: torch.Tensor, grid: Sequence[int],
               size: Sequence[int]) -> torch.Tensor:
    """(B, L) patch mask -> (B, 1, H, W) float pixel mask."""
    mask = mask.view(-1, 1, *grid).float()
    return F.interpolate(mask, size=tuple(size), mode='nearest')


@torch.no_grad()
def reconstruction_grid(model,
                        inputs: torch.Tensor,
                        mask: torch.Tensor,
                        mean: Sequence[float],
                        std: Sequence[float],
                        grid: Optional[Sequence[int]] = None,
                        gap: int = 2,
                        scale: int = 1) -> np.ndarray:
    """Render one row per image: input, masked input (masked patches grey),
    reconstruction, reconstruction with the visible patches pasted back.

    Args:
        model: a pre-training algorithm with ``reconstruct(inputs, mask)``.
        inputs: normalised images (B, C, H, W), as the data preprocessor
            gives them.
        mask: (B, L) patch mask, 1 = masked.
        mean, std: the data preprocessor's normalisation, to undo it.
        grid: patch grid (h, w); defaults to the backbone's.
        scale: integer upscaling of the picture (small images).
    Returns:
        (rows, cols, 3) uint8 RGB image.
    """
    model.eval()
    rec = model.reconstruct(inputs, mask)
    grid = grid or model.backbone.patch_resolution
    m = pixel_mask(mask, grid, inputs.shape[-2:]).to(inputs.dtype)
    pasted = inputs * (1 - m) + rec * m
    panels = [to_uint8_images(t, mean, std) for t in (inputs, None, rec,
                                                      pasted) if t is not None]
    masked = to_uint8_images(inputs, mean, std).copy()
    masked[m[:, 0].cpu().numpy().astype(bool)] = 127
    panels.insert(1, masked)
    return tile_panels(panels, gap, scale)


def tile_panels(panels: Sequence[np.ndarray], gap: int = 2,
                scale: int = 1) -> np.ndarray:
    """One row per image, one column per panel ((B, H, W, 3) uint8 each),
    on white with ``gap`` px between, upscaled ``scale`` times."""
    B, H, W, _ = panels[0].shape
    canvas = np.full((B * (H + gap) + gap, len(panels) * (W + gap) + gap, 3),
                     255, dtype=np.uint8)
    for row in range(B):
        for col, panel in enumerate(panels):
            y, x = gap + row * (H + gap), gap + col * (W + gap)
            canvas[y:y + H, x:x + W] = panel[row]
    if scale > 1:
        canvas = canvas.repeat(scale, axis=0).repeat(scale, axis=1)
    return canvas
