"""SIM's relative position embedding: view 2's patches in view 1's frame.

Both views are crops (top ``i``, left ``j``, height ``h``, width ``w``) of the
same image after an independent horizontal flip; every crop is resized to the
same ``G_h x G_w`` patch grid. The centre of view 2's patch ``(r, c)`` lies, in
units of view 1's patches (0 = centre of view 1's first patch), at

    gh = dh (r + 1/2) + di G_h - 1/2
    gw = dw (c + 1/2) + dj G_w - 1/2             (same flip)
    gw = -dw (c + 1/2) + dj_flip G_w - 1/2       (flip1 xor flip2)

with ``di = (i2 - i1) / h1``, ``dj = (j2 - j1) / w1``, ``dh = h2 / h1``,
``dw = w2 / w1`` and ``dj_flip = (W - j1 - j2) / w1`` (``W`` = image width).
The embedding is ``[sincos(gh), sincos(gw), sincos(10 ln dh),
sincos(10 ln dw)]`` with SIM's frequencies (2 x dim channels); for identical
crops its first ``dim`` channels are the ordinary ('yx') sin-cos table.
"""
from typing import NamedTuple, Sequence, Tuple, Union

import torch



class RelativeGeometry(NamedTuple):
    """Per-image crop relation of view 2 to view 1, each a (B,) tensor."""
    delta_i: torch.Tensor
    delta_j: torch.Tensor
    delta_h: torch.Tensor
    delta_w: torch.Tensor
    relative_flip: torch.Tensor
    flip_delta_j: torch.Tensor


def _sincos(positions: torch.Tensor, dim: int, dtype) -> torch.Tensor:
    """``sincos_1d`` computed in float64 on the positions' device, cast to
    ``dtype`` (so a GPU batch never builds a float64 table on the host)."""
    omega = torch.arange(dim // 2, dtype=torch.float64,
                         device=positions.device) / (dim / 2.)
    out = positions.to(torch.float64)[..., None] * (1. / 10000**omega)
    return torch.cat([out.sin().to(dtype), out.cos().to(dtype)], dim=-1)


def _grid(grid_size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(grid_size, int):
        return grid_size, grid_size
    return int(grid_size[0]), int(grid_size[1])


def relative_geometry(boxes1: torch.Tensor,
                      boxes2: torch.Tensor,
                      flip1: torch.Tensor,
                      flip2: torch.Tensor,
                      img_width: torch.Tensor) -> RelativeGeometry:
    """Turn two views' crop boxes into SIM's relative terms (float64).

    Args:
        boxes1 (Tensor): (B, 4) crop boxes ``(i, j, h, w)`` of view 1, in the
            (possibly flipped) image.
        boxes2 (Tensor): (B, 4) crop boxes of view 2.
        flip1 (Tensor): (B,) whether view 1 was flipped before cropping.
        flip2 (Tensor): (B,) the same for view 2.
        img_width (Tensor): (B,) width ``W`` of the original image.
    """
    boxes1 = torch.as_tensor(boxes1, dtype=torch.float64)
    boxes2 = torch.as_tensor(boxes2, dtype=torch.float64).to(boxes1.device)
    i1, j1, h1, w1 = boxes1.unbind(-1)
    i2, j2, h2, w2 = boxes2.unbind(-1)
    width = torch.as_tensor(img_width, dtype=torch.float64,
                            device=boxes1.device).reshape(-1)
    flip1 = torch.as_tensor(flip1, device=boxes1.device).reshape(-1).bool()
    flip2 = torch.as_tensor(flip2, device=boxes1.device).reshape(-1).bool()
    return RelativeGeometry(
        delta_i=(i2 - i1) / h1,
        delta_j=(j2 - j1) / w1,
        delta_h=h2 / h1,
        delta_w=w2 / w1,
        relative_flip=flip1 ^ flip2,
        flip_delta_j=(width - j1 - j2) / w1)


def relative_positions(geometry: RelativeGeometry,
                       grid_size: Union[int, Sequence[int]]
                       ) -> Tuple[torch.Tensor, torch.Tensor]:
    """(B, G_h * G_w) float64 positions ``(gh, gw)`` of view 2's patch centres
    (raster order) on view 1's patch grid."""
    gh_, gw_ = _grid(grid_size)
    g = geometry
    di, dj, dh, dw, dj_flip = (
        torch.as_tensor(t, dtype=torch.float64)[:, None]
        for t in (g.delta_i, g.delta_j, g.delta_h, g.delta_w, g.flip_delta_j))
    dev = di.device
    rows, cols = torch.meshgrid(
        torch.arange(gh_, dtype=torch.float64, device=dev) + .5,
        torch.arange(gw_, dtype=torch.float64, device=dev) + .5,
        indexing='ij')
    rows, cols = rows.flatten()[None], cols.flatten()[None]
    pos_h = dh * rows + di * gh_ - .5
    pos_w = dw * cols + dj * gw_ - .5
    pos_w_flip = -dw * cols + dj_flip * gw_ - .5
    flip = torch.as_tensor(g.relative_flip, device=dev).bool()[:, None]
    return pos_h, torch.where(flip, pos_w_flip, pos_w)


def sim_relative_pos_embed(geometry: RelativeGeometry,
                           dim: int,
                           grid_size: Union[int, Sequence[int]],
                           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """SIM's relative embedding of view 2 in view 1's frame, (B, L, 2 * dim).

    Computed in float64 and returned (detached) in ``dtype``; the channel
    layout is ``[sin(gh w), cos(gh w), sin(gw w), cos(gw w), sin(10 ln dh w),
    cos(10 ln dh w), sin(10 ln dw w), cos(10 ln dw w)]`` with ``w_k =
    10000^(-k / (dim / 4))``, ``k < dim / 4``.

    Args:
        geometry (RelativeGeometry): From :func:`relative_geometry`.
        dim (int): Decoder width ``D`` (multiple of 4).
        grid_size (int | tuple): The patch grid ``G`` or ``(G_h, G_w)``.
        dtype: Output dtype.
    """
    if dim % 4:
        raise ValueError(f'dim must be a multiple of 4, got {dim}')
    pos_h, pos_w = relative_positions(geometry, grid_size)
    num = pos_h.shape[1]
    scale_h = 10 * torch.log(torch.as_tensor(
        geometry.delta_h, dtype=torch.float64, device=pos_h.device))
    scale_w = 10 * torch.log(torch.as_tensor(
        geometry.delta_w, dtype=torch.float64, device=pos_h.device))
    half = dim // 2
    emb = torch.cat([
        _sincos(pos_h, half, dtype),
        _sincos(pos_w, half, dtype),
        _sincos(scale_h, half, dtype)[:, None].expand(-1, num, -1),
        _sincos(scale_w, half, dtype)[:, None].expand(-1, num, -1),
    ], dim=-1)
    return emb.detach()
