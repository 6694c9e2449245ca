"""HPM's loss predictor: a second MAE-shaped decoder that predicts per-patch losses."""
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule

from mmpretrain.models.backbones.vision_transformer import \
    TransformerEncoderLayer
from mmpretrain.registry import MODELS
from ..utils import (CheckedLoadingMixin, init_linear_layernorm,
                     visible_first_order)


@MODELS.register_module()
class LossPredictorHead(CheckedLoadingMixin, BaseModule):
    """Loss-prediction decoder of HPM (Wang et al., Hard Patches Mining for
    Masked Image Modeling, CVPR 2023; docs/hpm.md).

    Reads the same embedded decoder tokens as the reconstruction decoder
    (``MAEDecoder.embed_tokens``: (B, 1 + L, C) with the cls token first, not
    detached), runs ``depth`` transformer blocks, a norm and
    ``Linear(embed_dims -> out_channels)``, drops the cls output and averages
    over the last dimension: one predicted loss per patch, (B, L).

    Args:
        embed_dims (int): Decoder width. Defaults to 512.
        depth (int): Number of blocks. Defaults to 8.
        num_heads (int): Attention heads. Defaults to 16.
        mlp_ratio (float): MLP hidden ratio. Defaults to 4.
        out_channels (int): Width of the last Linear before the mean
            (p*p*3 in the reference). Defaults to 768.
        norm_cfg (dict): Norm layers. Defaults to LN with eps 1e-6.
        loss (dict): The loss-prediction loss, ``HPMRelativeLoss`` (default,
            the reference) or ``HPMStandardizedMSELoss``.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 embed_dims: int = 512,
                 depth: int = 8,
                 num_heads: int = 16,
                 mlp_ratio: float = 4.,
                 out_channels: int = 768,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 loss: dict = dict(type='HPMRelativeLoss'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.blocks = nn.ModuleList([
            TransformerEncoderLayer(
                embed_dims,
                num_heads,
                int(mlp_ratio * embed_dims),
                qkv_bias=True,
                norm_cfg=norm_cfg) for _ in range(depth)
        ])
        self.norm = build_norm_layer(norm_cfg, embed_dims)[1]
        self.pred = nn.Linear(embed_dims, out_channels, bias=True)
        self.loss_module = MODELS.build(loss)

    def init_weights(self) -> None:
        super().init_weights()
        if self.loads_pretrained:  # loaded by super(): keep it
            return
        # the reference initialises every Linear / LayerNorm as MAE does
        init_linear_layernorm(self)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, 1 + L, C) decoder tokens -> (B, L) predicted losses."""
        x = tokens
        for block in self.blocks:
            x = block(x)
        x = self.pred(self.norm(x))
        return x[:, 1:].mean(dim=-1)

    def loss(self, pred: torch.Tensor, patch_losses: torch.Tensor,
             mask: torch.Tensor,
             num_masked: Optional[int] = None) -> torch.Tensor:
        """Loss-prediction loss over the masked patches.

        Args:
            pred (Tensor): Predicted losses for every patch, (B, L).
            patch_losses (Tensor): Reconstruction loss of every patch, (B, L);
                detached here (the reference's target carries no gradient).
            mask (Tensor): (B, L) bool, 1 = masked; every image masks the
                same number M of patches.
            num_masked (int, optional): M, when the caller knows it
                (otherwise counted in ``mask``).

        Returns:
            Tensor: the scalar loss over the (B, M) masked entries (raster
            order within each image; both losses are order-invariant).
        """
        # the masked positions in raster order, gathered (a fixed-shape
        # selection: boolean indexing would wait for the device's count)
        ids_shuffle, _, num_visible = visible_first_order(mask, num_masked)
        masked_ids = ids_shuffle[:, num_visible:]
        pred_m = pred.gather(1, masked_ids)
        target_m = patch_losses.detach().gather(1, masked_ids)
        return self.loss_module(pred_m, target_m)
