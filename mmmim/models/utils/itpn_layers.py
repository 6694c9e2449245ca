"""Layers shared by iTPN's backbone, pyramid, pixel decoder and CLIP head:
the HiViT block with a relative position bias, the per-level embedding of the
pyramid, and conversions between the token layout and NCHW maps."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmpretrain.models.backbones.hivit import BlockWithRPE

from .attention import fused_multihead_attention


class iTPNBlock(BlockWithRPE):
    """HiViT block whose attention takes a precomputed relative bias.

    mmpretrain's ``Attention`` only supports the grid it was built for; here
    the bias (heads, N, N) or (B, heads, N, N) is computed by the caller for
    the actual grid (and the visible subset of tokens).
    """

    def forward(self, x, rel_bias: Optional[torch.Tensor] = None):
        if self.attn is not None:
            y = self._attention(self.norm1(x), rel_bias)
            if self.gamma_1 is not None:
                y = self.gamma_1 * y
            x = x + self.drop_path(y)
        y = self.mlp(self.norm2(x))
        if self.gamma_2 is not None:
            y = self.gamma_2 * y
        return x + self.drop_path(y)

    def _attention(self, x, rel_bias):
        attn = self.attn
        out = fused_multihead_attention(
            attn.qkv(x), attn.num_heads, rel_bias,
            dropout_p=attn.attn_drop.p if self.training else 0.,
            scale=attn.scale)
        return attn.proj_drop(attn.proj(out))


class LevelEmbed(nn.ModuleList):
    """``decoder_embed``: per level LayerNorm + Linear(fpn -> D / 4^k).

    The 4^k sub-tokens of a patch are concatenated back to D per patch, in
    (row, col, channel) order, as the reference reshape does. The LayerNorms
    use the reference's ``norm_layer`` eps (1e-6 in the pixel and CLIP code).
    """

    def __init__(self, fpn_dim: int, embed_dim: int, num_levels: int = 3,
                 eps: float = 1e-6):
        super().__init__([
            nn.Sequential(
                nn.LayerNorm(fpn_dim, eps=eps),
                nn.Linear(fpn_dim, embed_dim // 4**k))
            for k in range(num_levels)
        ])

    def embed(self, levels: Sequence[torch.Tensor]):
        """List of (B, N, D) per-patch embeddings, one per level."""
        out = []
        for x, layer in zip(levels, self):
            out.append(layer(x).reshape(x.shape[0], x.shape[1], -1))
        return out


def tokens_to_nchw(x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
    """Token layout (B, h*w, k, k, C) or (B, h*w, C) -> (B, C, h*k, w*k)."""
    if x.dim() == 3:
        x = x[:, :, None, None, :]
    B, _, k, _, C = x.shape
    x = x.reshape(B, hw[0], hw[1], k, k, C).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(B, C, hw[0] * k, hw[1] * k).contiguous()


def nchw_to_tokens(x: torch.Tensor, k: int) -> torch.Tensor:
    """(B, C, h*k, w*k) -> token layout (B, h*w, k, k, C)."""
    B, C, H, W = x.shape
    x = x.reshape(B, C, H // k, k, W // k, k).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(B, -1, k, k, C)
