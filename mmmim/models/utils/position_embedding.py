"""Fixed 2-D sin-cos position tables in both layouts used by the references."""
import torch


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
