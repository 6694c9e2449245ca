"""SIM's projector and predictor: transformer blocks, BatchNorm over tokens.

Parameter names follow the reference (``blocks.N.norm1.bn``, ``attn.qkv``,
``mlp.fc1`` ...) through timm's ``Block``; only the norm layer is SIM's.
"""
from functools import partial
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from timm.models.vision_transformer import Block

from mmpretrain.registry import MODELS
from ..utils import CheckedLoadingMixin, sincos_pos_embed_2d
from ..utils.relative_position import RelativeGeometry, sim_relative_pos_embed


class TokenBatchNorm(nn.Module):
    """BatchNorm over tokens: (B, L, C) -> BatchNorm1d on (B, C, L), so the
    statistics run over all B x L tokens; always in float32 (autocast off).

    Args:
        dim (int): Channels.
        norm_cfg (dict): mmcv norm config, ``dict(type='BN1d')`` or
            ``dict(type='SyncBN')``. Under DDP, ``sync_bn='torch'`` in the
            config converts BN1d to SyncBN as the reference does; mmengine
            reverts SyncBN to BN when not distributed.
    """

    def __init__(self, dim: int, norm_cfg: dict = dict(type='BN1d'),
                 device=None, dtype=None) -> None:
        super().__init__()
        self.bn = build_norm_layer(norm_cfg, dim)[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self.bn(x.float().transpose(1, 2)).transpose(1, 2)


def _blocks(depth: int, dim: int, num_heads: int, mlp_ratio: float,
            norm_cfg: dict) -> nn.ModuleList:
    norm = partial(TokenBatchNorm, norm_cfg=norm_cfg)
    return nn.ModuleList([
        Block(dim, num_heads, mlp_ratio, qkv_bias=True, norm_layer=norm)
        for _ in range(depth)
    ])


def _init_linear(module: nn.Module) -> None:
    """The reference's initialisation: xavier-uniform Linear, zero bias."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@MODELS.register_module()
class SIMProjector(CheckedLoadingMixin, BaseModule):
    """``Linear(in -> D)`` then ``depth`` blocks with token BatchNorm.

    Args:
        in_channels (int): Encoder width.
        embed_dims (int): Projector width ``D``.
        depth (int): Number of blocks. Defaults to 2.
        num_heads (int): Attention heads. Defaults to 16.
        mlp_ratio (float): MLP ratio. Defaults to 4.
        norm_cfg (dict): Norm of the blocks (see :class:`TokenBatchNorm`).
    """

    def __init__(self,
                 in_channels: int = 768,
                 embed_dims: int = 768,
                 depth: int = 2,
                 num_heads: int = 16,
                 mlp_ratio: float = 4.,
                 norm_cfg: dict = dict(type='BN1d'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.embed = nn.Linear(in_channels, embed_dims)
        self.blocks = _blocks(depth, embed_dims, num_heads, mlp_ratio,
                              norm_cfg)

    def init_weights(self) -> None:
        super().init_weights()
        if self.loads_pretrained:  # loaded by super(): keep it
            return
        _init_linear(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        for blk in self.blocks:
            x = blk(x)
        return x


@MODELS.register_module()
class SIMPredictor(CheckedLoadingMixin, BaseModule):
    """Predicts view 2's dense representation from view 1's visible tokens.

    Input sequence: ``[cls + pos_0, visible tokens + their pos, one mask token
    per patch of view 2 + Linear(relative embedding)]``; ``depth`` blocks with
    token BatchNorm; ``Linear(D -> D)``; the last ``G_h x G_w`` tokens are the
    prediction.

    Args:
        embed_dims (int): Width ``D``.
        grid_size (int | tuple): Patch grid ``G`` or ``(G_h, G_w)``.
        depth (int): Blocks. Defaults to 4.
        num_heads (int): Attention heads. Defaults to 16.
        mlp_ratio (float): MLP ratio. Defaults to 4.
        norm_cfg (dict): Norm of the blocks (see :class:`TokenBatchNorm`).
        sincos_layout (str): Layout of the fixed table for view 1's tokens;
            ``'yx'`` matches the relative embedding (SIM).
    """

    def __init__(self,
                 embed_dims: int = 768,
                 grid_size: Union[int, Sequence[int]] = 14,
                 depth: int = 4,
                 num_heads: int = 16,
                 mlp_ratio: float = 4.,
                 norm_cfg: dict = dict(type='BN1d'),
                 sincos_layout: str = 'yx',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(grid_size, int):
            grid_size = (grid_size, grid_size)
        self.grid_size = tuple(int(g) for g in grid_size)
        self.embed_dims = embed_dims
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        # the reference keeps this fixed table as a frozen parameter
        self.pos_embed = nn.Parameter(
            sincos_pos_embed_2d(*self.grid_size, embed_dims, sincos_layout,
                                cls_token=True),
            requires_grad=False)
        self.rel_pos_proj = nn.Linear(2 * embed_dims, embed_dims)
        self.blocks = _blocks(depth, embed_dims, num_heads, mlp_ratio,
                              norm_cfg)
        self.pred = nn.Linear(embed_dims, embed_dims)
        self.sincos_layout = sincos_layout

    @property
    def num_patches(self) -> int:
        return self.grid_size[0] * self.grid_size[1]

    def init_weights(self) -> None:
        super().init_weights()
        if self.loads_pretrained:  # loaded by super(): keep it
            return
        _init_linear(self)
        nn.init.normal_(self.mask_token, std=.02)
        self.pos_embed.data.copy_(
            sincos_pos_embed_2d(*self.grid_size, self.embed_dims,
                                self.sincos_layout, cls_token=True))

    def forward(self, x: torch.Tensor, mask: torch.Tensor,
                geometry: RelativeGeometry) -> torch.Tensor:
        """
        Args:
            x (Tensor): (B, 1 + V, D) projected tokens of view 1 (cls first,
                visible patches in raster order).
            mask (Tensor): (B, L) bool mask of view 1 (1 = masked).
            geometry (RelativeGeometry): View 2 relative to view 1.

        Returns:
            Tensor: (B, L, D) predictions for view 2's patches.
        """
        B, _, D = x.shape
        pos = self.pos_embed.to(x.dtype)
        visible = ~mask.flatten(1).bool()
        vis_pos = pos[:, 1:].expand(B, -1, -1)[visible].view(B, -1, D)
        if vis_pos.shape[1] != x.shape[1] - 1:
            raise ValueError(f'{x.shape[1] - 1} visible tokens but the mask '
                             f'leaves {vis_pos.shape[1]} visible')
        rel = sim_relative_pos_embed(geometry, D, self.grid_size)
        rel = self.rel_pos_proj(
            rel.to(x.device, self.rel_pos_proj.weight.dtype))
        queries = self.mask_token + rel
        x = torch.cat([x[:, :1] + pos[:, :1], x[:, 1:] + vis_pos,
                       queries.to(x.dtype)], dim=1)
        for blk in self.blocks:
            x = blk(x)
        x = self.pred(x)
        return x[:, -self.num_patches:]
