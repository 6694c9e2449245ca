"""Attention with a relative position bias through torch's fused kernel,
shared by SimMIM's BEiT layers and iTPN's HiViT blocks."""
from typing import Optional

import torch
import torch.nn.functional as F


def fused_multihead_attention(qkv: torch.Tensor,
                              num_heads: int,
                              bias: Optional[torch.Tensor] = None,
                              dropout_p: float = 0.,
                              scale: Optional[float] = None) -> torch.Tensor:
    """``softmax(q k^T * scale + bias) v`` of packed projections.

    Args:
        qkv (Tensor): (B, N, 3 C), the q, k and v projections concatenated.
        num_heads (int): Heads; each has C / num_heads channels.
        bias (Tensor, optional): Additive attention bias broadcastable to
            (B, heads, N, N), e.g. a relative position bias (heads, N, N).
        dropout_p (float): Attention dropout (pass 0 in eval mode).
        scale (float, optional): Defaults to head_dim ** -0.5.

    Returns:
        Tensor: (B, N, C), heads concatenated, before the output projection.
    """
    B, N, C3 = qkv.shape
    q, k, v = qkv.reshape(B, N, 3, num_heads, -1).permute(2, 0, 3, 1, 4)
    out = F.scaled_dot_product_attention(
        q, k, v,
        attn_mask=None if bias is None else bias.to(q.dtype),
        dropout_p=dropout_p,
        scale=scale)
    return out.transpose(1, 2).reshape(B, N, C3 // 3)


def relative_position_bias(table: torch.Tensor,
                           index: torch.Tensor) -> torch.Tensor:
    """(heads, N, N) attention bias from a (num_rel, heads) table and its
    (N, N) index."""
    n = index.shape[0]
    return table[index.reshape(-1)].reshape(n, n, -1).permute(2, 0, 1)
