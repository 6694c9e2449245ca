"""The iTPN feature pyramid: trained during pre-training, reused downstream.

The same parameters (named as the reference code names them) run in the token
layout of pre-training (only the visible patches, each with its inner tokens)
and as a dense neck on NCHW maps for Mask R-CNN or UperNet; a pre-training
checkpoint therefore loads with ``init_cfg=dict(type='Pretrained',
checkpoint=..., prefix='neck.')`` and nothing missing.
"""
from functools import partial
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.models.backbones.hivit import BlockWithRPE
from mmpretrain.models.necks.itpn_neck import PatchSplit
from mmpretrain.registry import MODELS
from ..utils import CheckedLoadingMixin, init_linear_layernorm
from ..utils.itpn_layers import nchw_to_tokens, tokens_to_nchw


def _mlp_block(dim: int, mlp_ratio: float, drop: float,
               norm_cfg: dict) -> BlockWithRPE:
    """LayerNorm + MLP residual block (HiViT block without attention)."""
    return BlockWithRPE(None, dim, 0, mlp_ratio, drop=drop, rpe=False,
                        norm_cfg=norm_cfg)


@MODELS.register_module()
class iTPNPyramidNeck(CheckedLoadingMixin, BaseModule):
    """Transformer pyramid of iTPN (strides 16, 8, 4; fpn width 256).

    Level 16 = ``align_dim_16tofpn``(stage-3 output); level 8 =
    ``block_16to8``(``split_16to8``(stage-3 output) + ``align_dim_16to8``
    (stage-2 feature)); level 4 = ``block_8to4``(``split_8to4``(level 8) +
    ``align_dim_8to4``(stage-1 feature)); each level then passes
    ``fpn_modules[i]`` (one more MLP block).

    Args:
        in_channels (int): Main-stage width of the backbone (512 for base);
            stage widths are in_channels / 2 and / 4.
        fpn_dim (int): Pyramid width. Defaults to 256.
        fpn_depth (int): MLP blocks after each split (2 pixel, 1 CLIP).
        mlp_ratio (float): MLP ratio of the pyramid blocks.
        drop_rate (float): Dropout in the MLP blocks.
        norm_cfg (dict): Norm layer config.
        out_mode (str): ``'tokens'``: pre-training; input is the backbone's
            token-layout ``(f4, f8, f16)``; output ``(l16, l8, l4)`` of shapes
            (B, N, 1, 1, D), (B, N, 2, 2, D), (B, N, 4, 4, D).
            ``'fpn'``: input the backbone's NCHW maps at strides 4, 8, 16;
            output 5 maps of ``fpn_dim`` channels at strides 4, 8, 16, 32, 64
            (32 and 64 average-pooled), for Mask R-CNN.
            ``'uper'``: output concat(level, backbone map) at strides 4, 8, 16
            (fpn_dim + C/4, C/2, C channels) plus a 2x max-pool of the
            stride-16 one (stride 32), for UperNet.
        init_cfg (dict, optional): e.g. ``dict(type='Pretrained',
            checkpoint=..., prefix='neck.')``.
    """

    def __init__(self,
                 in_channels: int = 512,
                 fpn_dim: int = 256,
                 fpn_depth: int = 2,
                 mlp_ratio: float = 4.,
                 drop_rate: float = 0.,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 out_mode: str = 'tokens',
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if out_mode not in ('tokens', 'fpn', 'uper'):
            raise ValueError(f'unknown out_mode {out_mode!r}')
        self.out_mode = out_mode
        self.in_channels = in_channels
        self.fpn_dim = fpn_dim
        dims = [in_channels // 4, in_channels // 2, in_channels]

        self.align_dim_16tofpn = nn.Linear(in_channels, fpn_dim)
        self.align_dim_16to8 = nn.Linear(dims[1], fpn_dim, bias=False)
        self.split_16to8 = PatchSplit(in_channels, fpn_dim, norm_cfg)
        self.block_16to8 = nn.Sequential(*[
            _mlp_block(fpn_dim, mlp_ratio, drop_rate, norm_cfg)
            for _ in range(fpn_depth)
        ])
        self.align_dim_8to4 = nn.Linear(dims[0], fpn_dim, bias=False)
        self.split_8to4 = PatchSplit(fpn_dim, fpn_dim, norm_cfg)
        self.block_8to4 = nn.Sequential(*[
            _mlp_block(fpn_dim, mlp_ratio, drop_rate, norm_cfg)
            for _ in range(fpn_depth)
        ])
        self.fpn_modules = nn.ModuleList(
            [_mlp_block(fpn_dim, mlp_ratio, drop_rate, norm_cfg)
             for _ in range(3)])
        init_linear_layernorm(self, partial(nn.init.trunc_normal_, std=.02))

    def forward_tokens(self, feats: Sequence[torch.Tensor]):
        """Pyramid in token layout: ``(f4, f8, f16)`` -> ``(l16, l8, l4)``."""
        f4, f8, f16 = feats[:3]
        if f16.dim() == 3:
            f16 = f16[:, :, None, None, :]
        l16 = self.align_dim_16tofpn(f16)
        l8 = self.block_16to8(self.split_16to8(f16) + self.align_dim_16to8(f8))
        l4 = self.block_8to4(self.split_8to4(l8) + self.align_dim_8to4(f4))
        return tuple(m(x) for m, x in zip(self.fpn_modules, (l16, l8, l4)))

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple:
        """Run the pyramid in the layout ``out_mode`` asks for.

        Args:
            feats: ``(f4, f8, f16)``, token layout for ``'tokens'``; NCHW maps
                at strides 4, 8, 16 otherwise.
        """
        if self.out_mode == 'tokens':
            return self.forward_tokens(feats)
        m4, m8, m16 = feats[-3:]
        hw = m16.shape[-2:]
        tokens = (nchw_to_tokens(m4, 4), nchw_to_tokens(m8, 2),
                  nchw_to_tokens(m16, 1))
        l16, l8, l4 = (tokens_to_nchw(t, hw)
                       for t in self.forward_tokens(tokens))
        if self.out_mode == 'fpn':
            p32 = F.avg_pool2d(l16, kernel_size=2, stride=2)
            p64 = F.avg_pool2d(p32, kernel_size=2, stride=2)
            return (l4, l8, l16, p32, p64)
        o4 = torch.cat([l4, m4], dim=1)
        o8 = torch.cat([l8, m8], dim=1)
        o16 = torch.cat([l16, m16], dim=1)
        return (o4, o8, o16, F.max_pool2d(o16, kernel_size=2, stride=2))
