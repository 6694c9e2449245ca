"""SIM's head: projector, predictor and the UniGrad loss.

The online branch runs ``predict(project(encoder tokens), mask, geometry)``;
the momentum branch (built by ``SIMPretrainer``) keeps an EMA copy of the
projector. Projector and predictor are timm ``Block``s with BatchNorm over the
tokens; parameter names follow the reference (``blocks.N.norm1.bn``,
``attn.qkv``, ``mlp.fc1`` ...).
"""
import copy
from functools import partial
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from timm.models.vision_transformer import Block

from mmpretrain.registry import MODELS
from ..utils import (CheckedLoadingMixin, TokenBatchNorm,
                     init_linear_layernorm, sincos_pos_embed_2d,
                     visible_first_order)
from ..utils.relative_position import RelativeGeometry, sim_relative_pos_embed


def _blocks(depth: int, dim: int, num_heads: int, mlp_ratio: float,
            norm_cfg: dict) -> nn.ModuleList:
    norm = partial(TokenBatchNorm, norm_cfg=norm_cfg)
    return nn.ModuleList([
        Block(dim, num_heads, mlp_ratio, qkv_bias=True, norm_layer=norm)
        for _ in range(depth)
    ])


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
        init_linear_layernorm(self)  # xavier Linear, as the reference

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
        init_linear_layernorm(self)  # xavier Linear, as the reference
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
        # the visible patches' positions in raster order (x holds their
        # tokens), gathered: boolean indexing would wait for the device
        num_visible = x.shape[1] - 1
        ids_keep, _, _ = visible_first_order(
            mask, mask.flatten(1).shape[1] - num_visible)
        vis_pos = pos[:, 1:].expand(B, -1, -1).gather(
            1, ids_keep[:, :num_visible, None].expand(-1, -1, D))
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


@MODELS.register_module()
class SiameseDenseHead(CheckedLoadingMixin, BaseModule):
    """Projector + predictor with BatchNorm-over-tokens norms, and the loss.

    The online branch runs ``predict(project(encoder tokens), mask,
    geometry)``; the momentum branch keeps an EMA copy of ``projector``. The
    loss LayerNorms the targets (no affine, eps ``target_norm_eps``) and
    applies UniGrad (dense by default) in float32.

    Args:
        in_channels (int): Encoder width. Defaults to 768.
        embed_dims (int): Projector / predictor width. Defaults to 768.
        grid_size (int | tuple): Patch grid of the views. Defaults to 14.
        num_heads (int): Heads of the projector / predictor blocks.
            Defaults to 16.
        mlp_ratio (float): MLP ratio. Defaults to 4.
        projector_depth (int): Projector blocks. Defaults to 2.
        predictor_depth (int): Predictor blocks. Defaults to 4.
        norm_cfg (dict): Token BatchNorm config, ``dict(type='BN1d')`` (use
            ``sync_bn='torch'`` in the config under DDP) or
            ``dict(type='SyncBN')``.
        loss (dict): UniGrad config. Defaults to the dense form, lambda 0.02.
        target_norm_eps (float): Eps of the target LayerNorm. Defaults to 1e-5.
        target (str): ``'feature'`` (the momentum branch's projected view 2;
            SIM) or ``'pixel'`` (view 2's pixels, each patch normalised by
            its mean and unbiased variance as MAE's norm_pix, predicted by
            an extra ``Linear(embed_dims -> p*p*3)`` and regressed with MSE
            over all of view 2's patches; the first step of SIM's path from
            MAE).
        patch_size (int, optional): Patch size, for ``target='pixel'``.
    """

    def __init__(self,
                 in_channels: int = 768,
                 embed_dims: int = 768,
                 grid_size: Union[int, Sequence[int]] = 14,
                 num_heads: int = 16,
                 mlp_ratio: float = 4.,
                 projector_depth: int = 2,
                 predictor_depth: int = 4,
                 norm_cfg: dict = dict(type='BN1d'),
                 loss: dict = dict(type='UniGradLoss', neg_weight=0.02,
                                   mode='dense'),
                 target_norm_eps: float = 1e-5,
                 target: str = 'feature',
                 patch_size: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.projector = SIMProjector(in_channels, embed_dims, projector_depth,
                                      num_heads, mlp_ratio, norm_cfg)
        self.predictor = SIMPredictor(embed_dims, grid_size, predictor_depth,
                                      num_heads, mlp_ratio, norm_cfg)
        loss = copy.deepcopy(loss)
        loss.setdefault('_scope_', 'mmpretrain')
        self.loss_module = MODELS.build(loss)
        self.target_norm_eps = target_norm_eps
        if target not in ('feature', 'pixel'):
            raise ValueError(f"target must be 'feature' or 'pixel', got "
                             f'{target!r}')
        self.target = target
        self.patch_size = patch_size
        if target == 'pixel':
            if not patch_size:
                raise ValueError("target='pixel' needs the patch_size")
            self.pixel_pred = torch.nn.Linear(embed_dims, patch_size**2 * 3)

    def project(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N, C) encoder tokens -> (B, N, D)."""
        return self.projector(tokens)

    def predict(self, latent: torch.Tensor, mask: torch.Tensor,
                geometry: RelativeGeometry) -> torch.Tensor:
        """(B, 1 + V, D) projected view-1 tokens -> (B, L, D) predictions."""
        return self.predictor(latent, mask, geometry)

    def normalize_target(self, target: torch.Tensor) -> torch.Tensor:
        """LayerNorm without affine, float32, no gradient."""
        with torch.no_grad():
            return F.layer_norm(target.float(), target.shape[-1:],
                                eps=self.target_norm_eps)

    def pixel_target(self, view2: torch.Tensor) -> torch.Tensor:
        """View 2's patches (B, L, p*p*3), (row, col, channel) order, each
        standardised by its mean and unbiased variance (+1e-6)."""
        B, C, H, W = view2.shape
        p = self.patch_size
        x = view2.float().reshape(B, C, H // p, p, W // p, p)
        x = x.permute(0, 2, 4, 3, 5, 1).reshape(B, (H // p) * (W // p), -1)
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True)
        return (x - mean) / (var + 1.e-6)**.5

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """UniGrad between predictions and LayerNorm-ed momentum features
        (``target='feature'``), or the pixel MSE (``'pixel'``).

        Args:
            pred (Tensor): (B, L, D) predictions of view 2.
            target (Tensor): (B, L, D) momentum projector outputs of view 2
                (patch tokens only), or :meth:`pixel_target` of view 2.
        """
        if self.target == 'pixel':
            pixels = self.pixel_pred(pred).float()
            return ((pixels - target)**2).mean()
        return self.loss_module(pred.float(), self.normalize_target(target))
