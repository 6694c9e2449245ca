"""Loss heads of iTPN pre-training."""
from functools import partial
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from mmpretrain.models.heads import MAEPretrainHead
from mmpretrain.registry import MODELS
from timm.layers import gen_relative_position_index
from ..utils import (CheckedLoadingMixin, init_linear_layernorm,
                     relative_position_bias, trunc_normal_02_)
from ..utils.itpn_layers import LevelEmbed, iTPNBlock


@MODELS.register_module()
class iTPNPixelHead(CheckedLoadingMixin, MAEPretrainHead):
    """MAE's masked pixel MSE with normalised targets, as iTPN computes it.

    The target patch is normalised by its mean and **unbiased** variance
    (``(x - mean) / sqrt(var + 1e-6)``); the loss is the per-patch MSE
    averaged over masked patches. The reference ignores its ``norm_pix_loss``
    flag and always normalises, hence ``norm_pix=True`` by default.

    Args:
        loss (dict): Reconstruction loss config (L2 over masked patches).
        norm_pix (bool): Normalise target pixels per patch.
        patch_size (int): Patch size.
        in_channels (int): Image channels.
    """

    def __init__(self,
                 loss: Optional[dict] = None,
                 norm_pix: bool = True,
                 patch_size: int = 16,
                 in_channels: int = 3) -> None:
        loss = loss or dict(type='PixelReconstructionLoss', criterion='L2')
        super().__init__(loss=loss, norm_pix=norm_pix, patch_size=patch_size,
                         in_channels=in_channels)

    def loss(self, pred: torch.Tensor, target: torch.Tensor,
             mask: torch.Tensor) -> torch.Tensor:
        """Masked pixel loss; ``mask`` (B, L), 1 = masked."""
        return super().loss(pred, target, mask.flatten(1).to(pred.dtype))


@MODELS.register_module()
class iTPNCLIPHead(CheckedLoadingMixin, BaseModule):
    """Prediction heads and loss of the reference iTPN CLIP variant.

    Main output: the per-level embeddings ``decoder_embed`` (LayerNorm +
    Linear(fpn -> D / 4^k), sub-tokens concatenated back to D per patch)
    summed over levels, ``norm``, ``lm_head``. Auxiliary output: the main
    stage's tokens after ``early_layers`` blocks through ``cls_pt_layers``
    (attention blocks with layer scale and relative position bias),
    ``norm_cls``, ``lm_cls_head``. Loss: SmoothL1 (beta 1) of each output
    against the teacher target over **all** tokens, summed.

    Args:
        embed_dim (int): Backbone main width (512).
        fpn_dim (int): Pyramid width (256).
        target_dim (int): Teacher feature width (512 for CLIP ViT-B/16).
        num_levels (int): Pyramid levels fused.
        num_aux_layers (int): Blocks of the auxiliary branch (2).
        num_heads (int): Heads of those blocks (8).
        mlp_ratio (float): Their MLP ratio.
        grid_size (int | tuple): Patch grid (14) for the relative bias.
        use_rel_pos_bias (bool): Relative position bias in the aux blocks.
        layer_scale_init_value (float): Layer scale of the aux blocks (0.1).
        norm_cfg (dict): Norm layers of ``decoder_embed``, ``norm`` and
            ``norm_cls`` (LN eps 1e-6, the reference's ``norm_layer``).
        aux_norm_cfg (dict): Norm layers inside the aux blocks. The reference
            builds ``cls_pt_layers`` without its ``norm_layer``, so they get
            ``nn.LayerNorm``'s eps 1e-5 (reproduced by default).
        reference_init (bool): Start the aux blocks' relative position bias
            tables at zero, as the reference (default); False:
            trunc-normal(0.02).
    """

    def __init__(self,
                 embed_dim: int = 512,
                 fpn_dim: int = 256,
                 target_dim: int = 512,
                 num_levels: int = 3,
                 num_aux_layers: int = 2,
                 num_heads: int = 8,
                 mlp_ratio: float = 4.,
                 grid_size=14,
                 use_rel_pos_bias: bool = True,
                 layer_scale_init_value: float = 0.1,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 aux_norm_cfg: dict = dict(type='LN', eps=1e-5),
                 reference_init: bool = True,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        eps = norm_cfg.get('eps', 1e-5)
        self.decoder_embed = LevelEmbed(fpn_dim, embed_dim, num_levels,
                                        eps=eps)
        self.norm = nn.LayerNorm(embed_dim, eps=eps)
        self.lm_head = nn.Linear(embed_dim, target_dim)
        self.grid = (grid_size, grid_size) if isinstance(grid_size, int) \
            else tuple(grid_size)
        self.cls_pt_layers = nn.ModuleList([
            iTPNBlock(None, embed_dim, num_heads, mlp_ratio, True, None,
                      rpe=False, layer_scale_init_value=layer_scale_init_value,
                      norm_cfg=aux_norm_cfg) for _ in range(num_aux_layers)
        ])
        self.use_rel_pos_bias = use_rel_pos_bias
        if use_rel_pos_bias:
            n_rel = (2 * self.grid[0] - 1) * (2 * self.grid[1] - 1)
            for blk in self.cls_pt_layers:
                blk.attn.relative_position_bias_table = nn.Parameter(
                    torch.zeros(n_rel, num_heads))
            self.register_buffer('relative_position_index',
                                 gen_relative_position_index(self.grid),
                                 persistent=False)
        self.norm_cls = nn.LayerNorm(embed_dim, eps=eps)
        self.lm_cls_head = nn.Linear(embed_dim, target_dim)
        init_linear_layernorm(self, trunc_normal_02_)
        if use_rel_pos_bias and not reference_init:
            for blk in self.cls_pt_layers:
                nn.init.trunc_normal_(blk.attn.relative_position_bias_table,
                                      std=.02)

    def set_aux_drop_path(self, rates) -> None:
        """Stochastic depth of the aux blocks, one rate per block."""
        for blk, rate in zip(self.cls_pt_layers, rates):
            blk.drop_path = DropPath(rate) if rate > 0 else nn.Identity()

    def forward(self, levels, early: torch.Tensor):
        """``(main, aux)`` predictions, each (B, L, target_dim)."""
        feats = self.decoder_embed.embed(levels)
        x = feats[0]
        for f in feats[1:]:
            x = x + f
        main = self.lm_head(self.norm(x))
        y = early
        for blk in self.cls_pt_layers:
            bias = None
            if self.use_rel_pos_bias:
                bias = relative_position_bias(
                    blk.attn.relative_position_bias_table,
                    self.relative_position_index)
            y = blk(y, bias)
        aux = self.lm_cls_head(self.norm_cls(y))
        return main, aux

    def loss(self, levels, early: torch.Tensor,
             target: torch.Tensor) -> torch.Tensor:
        """SmoothL1(main, target) + SmoothL1(aux, target) over all tokens."""
        main, aux = self(levels, early)
        target = target.to(main.dtype)
        return F.smooth_l1_loss(main, target) + F.smooth_l1_loss(aux, target)


@MODELS.register_module()
class iTPNMFMHead(CheckedLoadingMixin, BaseModule):
    """Per-level regression of EMA-teacher features (iTPN paper's MFM).

    Level k of the pyramid (strides 16, 8, 4; token layout) is mapped by a
    Linear(fpn_dim -> C_k) to the teacher backbone's feature of the same
    stride (C_k = 512, 256, 128 for base); the loss of each level is the
    ``criterion`` averaged over the channels and the sub-tokens of **masked**
    patches only; the total is the ``level_weights``-weighted sum.

    Args:
        fpn_dim (int): Pyramid width.
        target_dims (Sequence[int]): Teacher widths at strides 16, 8, 4.
        criterion (str): 'mse' or 'smooth_l1'.
        level_weights (Sequence[float]): Weight of each level's loss.
    """

    def __init__(self,
                 fpn_dim: int = 256,
                 target_dims=(512, 256, 128),
                 criterion: str = 'mse',
                 level_weights=(1., 1., 1.),
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if criterion not in ('mse', 'smooth_l1'):
            raise ValueError(f'unknown criterion {criterion!r}')
        self.criterion = criterion
        self.level_weights = tuple(level_weights)
        self.predictors = nn.ModuleList(
            [nn.Linear(fpn_dim, c) for c in target_dims])
        init_linear_layernorm(self.predictors,
                              partial(nn.init.trunc_normal_, std=.02))

    def loss(self, levels, targets, mask: torch.Tensor) -> torch.Tensor:
        """Masked regression loss.

        Args:
            levels: Pyramid outputs ``(l16, l8, l4)`` over all L patches.
            targets: Teacher features ``(t16, t8, t4)`` in token layout.
            mask (Tensor): (B, L) bool, 1 = masked.
        """
        w = mask.flatten(1).float()
        total = 0.
        for lvl, tgt, pred_layer, weight in zip(levels, targets,
                                                self.predictors,
                                                self.level_weights):
            pred = pred_layer(lvl)
            tgt = tgt.reshape(pred.shape).to(pred.dtype)
            if self.criterion == 'mse':
                err = (pred - tgt)**2
            else:
                err = F.smooth_l1_loss(pred, tgt, reduction='none')
            # mean over channels and the patch's sub-tokens -> (B, L)
            err = err.reshape(err.shape[0], err.shape[1], -1).mean(-1)
            total = total + weight * (err * w).sum() / w.sum().clamp(min=1)
        return total
