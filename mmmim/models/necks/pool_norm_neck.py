"""Mean pooling + LayerNorm (``fc_norm``) for fine-tuning dense backbones."""
from typing import Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmpretrain.registry import MODELS
from ..utils import CheckedLoadingMixin


@MODELS.register_module()
class PoolNormNeck(CheckedLoadingMixin, BaseModule):
    """Average the last NCHW map (or (B, L, C) tokens) and apply fc_norm.

    The fine-tuning head of MAE / BEiT / iTPN: ``LayerNorm(mean(tokens))``,
    for backbones that return feature maps (e.g. ``iTPNBackbone``) where
    mmpretrain's ViT would use ``out_type='avg_featmap'``.

    With ``frozen=True`` the norm keeps its fresh initialisation (weight 1,
    bias 0) and takes no gradient: SIM's linear probe, where the fine-tuning
    model's new ``fc_norm`` stays frozen at init in front of the BatchNorm
    (Siamese-Image-Modeling main_linprobe.py:236-253, models_vit.py:
    202-207, 223-227).

    Args:
        in_channels (int): channels of the map.
        eps (float): LayerNorm epsilon. Defaults to 1e-6.
        frozen (bool): keep the norm at its initialisation. Defaults to
            False.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, in_channels: int, eps: float = 1e-6,
                 frozen: bool = False, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.fc_norm = nn.LayerNorm(in_channels, eps=eps)
        self.frozen = frozen
        if frozen:
            self.fc_norm.requires_grad_(False)

    def forward(self, inputs) -> Tuple[torch.Tensor]:
        x = inputs[-1] if isinstance(inputs, (list, tuple)) else inputs
        x = x.flatten(2).mean(-1) if x.dim() == 4 else x.mean(1)
        return (self.fc_norm(x), )
