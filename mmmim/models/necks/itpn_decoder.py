"""Decoders that turn iTPN pyramid levels into pre-training predictions."""
from typing import Optional, Sequence

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.models.backbones.hivit import BlockWithRPE
from mmpretrain.registry import MODELS

from ..utils import (CheckedLoadingMixin, init_linear_layernorm,
                     sincos_pos_embed_2d, trunc_normal_02_)
from ..utils.itpn_layers import LevelEmbed


@MODELS.register_module()
class iTPNPixelDecoder(CheckedLoadingMixin, BaseModule):
    """iTPN pixel decoder (reference ``decoder_*`` parameters).

    Each pyramid level is embedded to ``embed_dim`` per patch; the shared
    mask token is appended for every masked patch and raster order restored;
    the three levels are **summed** (masked positions get 3 x mask token) with
    the fixed sin-cos decoder table; then ``depth`` transformer blocks,
    LayerNorm and a linear prediction of the patch pixels.

    Args:
        num_patches (int): Patches of the pre-training image (196).
        patch_size (int): Patch size (pixels predicted per patch side).
        in_channels (int): Image channels.
        fpn_dim (int): Pyramid width.
        embed_dim (int): Decoder width (512).
        depth (int): Decoder blocks (8 in the reference; mmpretrain's 6 is a
            known deviation).
        num_heads (int): Decoder heads (16).
        mlp_ratio (float): Decoder MLP ratio.
        num_levels (int): Pyramid levels fused (3).
        norm_cfg (dict): Norm layer config.
    """

    def __init__(self,
                 num_patches: int = 196,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 fpn_dim: int = 256,
                 embed_dim: int = 512,
                 depth: int = 8,
                 num_heads: int = 16,
                 mlp_ratio: float = 4.,
                 num_levels: int = 3,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.num_patches = num_patches
        self.embed_dim = embed_dim
        self.decoder_embed = LevelEmbed(fpn_dim, embed_dim, num_levels,
                                        eps=norm_cfg.get('eps', 1e-5))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        grid = int(num_patches**.5)
        if grid * grid != num_patches:
            raise ValueError(f'num_patches must be square, got {num_patches}')
        # fixed (not trained) table, MAE's column-first layout, no cls row
        self.decoder_pos_embed = nn.Parameter(
            sincos_pos_embed_2d(grid, grid, embed_dim, layout='xy'),
            requires_grad=False)
        self.decoder_blocks = nn.ModuleList([
            BlockWithRPE(None, embed_dim, num_heads, mlp_ratio, True, None,
                         rpe=False, norm_cfg=norm_cfg) for _ in range(depth)
        ])
        self.decoder_norm = nn.LayerNorm(embed_dim,
                                         eps=norm_cfg.get('eps', 1e-5))
        self.decoder_pred = nn.Linear(embed_dim, patch_size**2 * in_channels)
        init_linear_layernorm(self, trunc_normal_02_)
        nn.init.normal_(self.mask_token, std=.02)

    def forward(self, levels: Sequence[torch.Tensor],
                ids_restore: torch.Tensor) -> torch.Tensor:
        """Predict the pixels of every patch.

        Args:
            levels: Pyramid outputs ``(l16, l8, l4)`` of the visible patches,
                visible patches in the order ``ids_restore`` undoes.
            ids_restore (Tensor): (B, L) indices restoring raster order from
                [visible..., masked...].

        Returns:
            Tensor: (B, L, patch_size**2 * in_channels).
        """
        B, L = ids_restore.shape
        if self.decoder_pos_embed.shape[1] != L:
            raise ValueError(f'decoder built for '
                             f'{self.decoder_pos_embed.shape[1]} patches, '
                             f'got {L}')
        feats = []
        for feat in self.decoder_embed.embed(levels):
            mask_tokens = self.mask_token.to(feat.dtype).expand(
                B, L - feat.shape[1], -1)
            feat = torch.cat([feat, mask_tokens], dim=1)
            feats.append(feat.gather(
                1, ids_restore[:, :, None].expand(-1, -1, feat.shape[2])))
        # same summation order as the reference: level 16 + pos, then others
        x = feats[0] + self.decoder_pos_embed.to(feats[0].dtype)
        for feat in feats[1:]:
            x = x + feat
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))
