"""ViTDet's simple feature pyramid: 5 levels from one stride-16 ViT map.

mmdet's ViTDet (``projects/ViTDet``) is not part of its pip wheel, so the neck
lives here. From the last backbone output (stride 16, ``in_channels``):

- stride 4: ConvTranspose(2, 2) -> LN2d -> GELU -> ConvTranspose(2, 2)
  (``in_channels / 4`` channels)
- stride 8: ConvTranspose(2, 2) (``in_channels / 2``)
- stride 16: identity
- stride 32: MaxPool(2, 2)

each followed by Conv1x1 -> LN2d -> Conv3x3 -> LN2d to ``out_channels``; the
stride-64 level is max-pool(kernel 1, stride 2) of the stride-32 output
(ViTDet's ``LastLevelMaxPool``). Output: a tuple of NCHW maps, finest first,
as mmdet's FPN returns.
"""
from typing import Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmpretrain.models.utils import build_norm_layer
from mmpretrain.registry import MODELS
from ..utils import CheckedLoadingMixin


@MODELS.register_module()
class SimpleFeaturePyramid(CheckedLoadingMixin, BaseModule):
    """Simple feature pyramid (ViTDet) for plain ViT backbones.

    Args:
        in_channels (int): channels of the backbone map.
        out_channels (int): channels of every output level. Defaults to 256.
        scale_factors (Sequence[float]): up/down-sampling of the input map
            per level; 4, 2, 1 and 1/2^k (max-pooling) are supported.
            Defaults to (4.0, 2.0, 1.0, 0.5) (strides 4-32 from a
            stride-16 map).
        num_outs (int): number of outputs; levels beyond
            ``len(scale_factors)`` are max-pooled (stride 2) from the last.
            Defaults to 5 (strides 4-64).
        in_index (int): which backbone output to use. Defaults to -1.
        norm_cfg (dict): norm after each conv (built in mmpretrain's
            registry, so ``LN2d`` works under any scope).
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int = 256,
                 scale_factors: Sequence[float] = (4.0, 2.0, 1.0, 0.5),
                 num_outs: int = 5,
                 in_index: int = -1,
                 norm_cfg: dict = dict(type='LN2d', eps=1e-6),
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_outs < len(scale_factors):
            raise ValueError('num_outs must be >= len(scale_factors)')
        self.in_index = in_index
        self.num_outs = num_outs
        self.stages = nn.ModuleList()
        for scale in scale_factors:
            dim = in_channels
            if scale == 4.0:
                layers = [
                    nn.ConvTranspose2d(dim, dim // 2, 2, stride=2),
                    build_norm_layer(norm_cfg, dim // 2),
                    nn.GELU(),
                    nn.ConvTranspose2d(dim // 2, dim // 4, 2, stride=2),
                ]
                dim = dim // 4
            elif scale == 2.0:
                layers = [nn.ConvTranspose2d(dim, dim // 2, 2, stride=2)]
                dim = dim // 2
            elif scale == 1.0:
                layers = []
            elif scale < 1 and (1 / scale).is_integer() and \
                    int(1 / scale) & (int(1 / scale) - 1) == 0:
                # 0.5 (ViTDet); 0.25, ... for backbones of finer stride
                k = int(1 / scale)
                layers = [nn.MaxPool2d(kernel_size=k, stride=k)]
            else:
                raise ValueError(f'scale factor {scale} is not supported')
            layers += [
                nn.Conv2d(dim, out_channels, 1, bias=False),
                build_norm_layer(norm_cfg, out_channels),
                nn.Conv2d(out_channels, out_channels, 3, padding=1,
                          bias=False),
                build_norm_layer(norm_cfg, out_channels),
            ]
            self.stages.append(nn.Sequential(*layers))

    def forward(self, inputs) -> Tuple[torch.Tensor, ...]:
        x = inputs[self.in_index] if isinstance(inputs,
                                                (list, tuple)) else inputs
        outs = [stage(x) for stage in self.stages]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return tuple(outs)
