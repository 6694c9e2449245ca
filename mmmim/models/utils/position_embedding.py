"""Position tables: fixed 2-D sin-cos tables in both layouts used by the
references, and relative position bias tables resized to other grids.

The sin-cos tables are computed here in float64, as the references do (with
numpy), rather than with mmpretrain's ``build_2d_sincos_position_embedding``,
which computes in float32 and differs from them in the last bits.
"""
from typing import Sequence

import torch
from timm.layers import resize_rel_pos_bias_table_simple


def sincos_1d(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """[sin(t w), cos(t w)] with w_k = 10000^(-k / (dim / 2)), k < dim / 2.

    ``positions`` of any shape gives ``positions.shape + (dim,)``.
    """
    if dim % 2:
        raise ValueError(f'sin-cos embedding needs an even dim, got {dim}')
    omega = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.)
    omega = 1. / 10000**omega
    out = positions.to(torch.float64)[..., None] * omega
    return torch.cat([out.sin(), out.cos()], dim=-1)


def sincos_pos_embed_2d(grid_h: int,
                        grid_w: int,
                        dim: int,
                        layout: str = 'xy',
                        cls_token: bool = False) -> torch.Tensor:
    """A (1, [1 +] grid_h * grid_w, dim) float32 sin-cos table, raster order.

    Args:
        layout: ``'xy'`` puts the column (x) half first, as MAE, HPM and iTPN
            do; ``'yx'`` puts the row (y) half first, as SIM and mmpretrain's
            ``build_2d_sincos_position_embedding`` do.
        cls_token: prepend a zero row for the cls token.
    """
    if dim % 4:
        raise ValueError(f'2-D sin-cos embedding needs dim % 4 == 0, got {dim}')
    if layout not in ('xy', 'yx'):
        raise ValueError(f"layout must be 'xy' or 'yx', got {layout!r}")
    rows, cols = torch.meshgrid(
        torch.arange(grid_h), torch.arange(grid_w), indexing='ij')
    emb_y = sincos_1d(rows.flatten(), dim // 2)
    emb_x = sincos_1d(cols.flatten(), dim // 2)
    halves = (emb_x, emb_y) if layout == 'xy' else (emb_y, emb_x)
    table = torch.cat(halves, dim=1)
    if cls_token:
        table = torch.cat([table.new_zeros(1, dim), table], dim=0)
    return table.float()[None]


def resize_rel_pos_bias(table: torch.Tensor,
                        src_grid: Sequence[int],
                        dst_grid: Sequence[int],
                        num_extra: int = 0) -> torch.Tensor:
    """Resize a ``((2h-1)(2w-1) + num_extra, heads)`` relative position bias
    table from the ``src_grid`` (h, w) token grid to ``dst_grid``.

    timm's ``resize_rel_pos_bias_table_simple`` (bicubic) on the
    ``(heads, 2h-1, 2w-1)`` layout, so any two grids work; the ``num_extra``
    trailing rows (BEiT's 3 cls entries) are kept as they are.
    """
    heads = table.shape[1]
    src = (2 * src_grid[0] - 1, 2 * src_grid[1] - 1)
    dst = (2 * dst_grid[0] - 1, 2 * dst_grid[1] - 1)
    grid = table[:table.shape[0] - num_extra].T.reshape(heads, *src)
    grid = resize_rel_pos_bias_table_simple(grid, tuple(dst_grid),
                                            (heads, *dst))
    return torch.cat([grid.reshape(heads, -1).T,
                      table[table.shape[0] - num_extra:]])
