"""SimMIM prediction heads (the paper's head ablation): linear, 2-layer MLP,
inverse Swin; each maps the encoder's feature map to a target map."""
from typing import Optional, Sequence

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmpretrain.models.backbones.swin_transformer import SwinBlockSequence
from mmpretrain.registry import MODELS
from ..utils import CheckedLoadingMixin


def _to_target_stride(in_channels: int, out_channels: int,
                      in_stride: int, out_stride: int) -> nn.Sequential:
    """1x1 conv from a stride-``in_stride`` map to ``out_channels`` per
    location of a stride-``out_stride`` map: PixelShuffle after the conv
    for finer targets (SimMIM's linear decoder), PixelUnshuffle before it
    for coarser ones (a linear map of every feature in the target cell)."""
    if in_stride >= out_stride:
        if in_stride % out_stride:
            raise ValueError(f'encoder stride {in_stride} is not a multiple '
                             f'of the target stride {out_stride}')
        r = in_stride // out_stride
        return nn.Sequential(
            nn.Conv2d(in_channels, r * r * out_channels, kernel_size=1),
            nn.PixelShuffle(r))
    if out_stride % in_stride:
        raise ValueError(f'target stride {out_stride} is not a multiple of '
                         f'the encoder stride {in_stride}')
    r = out_stride // in_stride
    return nn.Sequential(
        nn.PixelUnshuffle(r),
        nn.Conv2d(r * r * in_channels, out_channels, kernel_size=1))


@MODELS.register_module()
class SimMIMDecoder(CheckedLoadingMixin, BaseModule):
    """SimMIM's linear head, or a 2-layer MLP head, for any target map.

    ``num_layers=1`` with ``out_channels=3`` and ``out_stride=1`` is the
    reference's (and mmpretrain's ``SimMIMLinearDecoder``): a 1x1 conv to
    ``encoder_stride^2 * 3`` channels and a PixelShuffle, with the same
    parameter names (``decoder.0``). ``num_layers=2`` is the paper's 2-layer
    MLP head: 1x1 conv to ``hidden_channels``, GELU, then the linear
    prediction. ``out_stride`` > 1 predicts a lower-resolution target
    (``PixelTarget(downsample=...)``); ``out_channels`` is the target's
    ``pred_channels`` (e.g. ``3 * 256`` for 256 colour bins per channel).

    Args:
        in_channels (int): Encoder width.
        encoder_stride (int): Image pixels per feature location.
        out_channels (int): Predicted channels per target location.
        out_stride (int): Image pixels per target location.
        num_layers (int): 1 (linear) or 2 (MLP).
        hidden_channels (int, optional): MLP width; defaults to
            ``in_channels``.
    """

    def __init__(self,
                 in_channels: int,
                 encoder_stride: int,
                 out_channels: int = 3,
                 out_stride: int = 1,
                 num_layers: int = 1,
                 hidden_channels: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_layers not in (1, 2):
            raise ValueError(f'num_layers must be 1 or 2, got {num_layers}')
        self.in_channels = in_channels
        self.encoder_stride = encoder_stride
        self.out_channels = out_channels
        self.out_stride = out_stride
        if num_layers == 2:
            hidden_channels = hidden_channels or in_channels
            self.mlp = nn.Sequential(
                nn.Conv2d(in_channels, hidden_channels, kernel_size=1),
                nn.GELU())
            in_channels = hidden_channels
        else:
            self.mlp = None
        self.decoder = _to_target_stride(in_channels, out_channels,
                                         encoder_stride, out_stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mlp is not None:
            x = self.mlp(x)
        return self.decoder(x)


class PatchExpand(nn.Module):
    """Swin-Unet's patch expanding: Linear(C -> 2C), 2x2 pixel shuffle to
    C / 2 channels at twice the resolution, LayerNorm; (B, N, C) tokens."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.expand = nn.Linear(dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(dim // 2)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor, hw):
        B, _, C = x.shape
        x = self.expand(x).transpose(1, 2).reshape(B, 2 * C, *hw)
        x = self.shuffle(x)
        hw = (hw[0] * 2, hw[1] * 2)
        return self.norm(x.flatten(2).transpose(1, 2)), hw


@MODELS.register_module()
class InverseSwinDecoder(CheckedLoadingMixin, BaseModule):
    """The paper's inverse-Swin head: Swin stages at rising resolution.

    A 1x1 projection to ``embed_dims``, then ``len(depths)`` stages of
    mmpretrain ``SwinBlockSequence``s, each but the first preceded by a
    2x patch expanding (resolution x2, width / 2), then the linear
    prediction of the target map (:class:`SimMIMDecoder`'s last layer).
    Inverse Swin-T for a Swin-B encoder: ``embed_dims=768,
    depths=(2, 6, 2, 2), num_heads=(24, 12, 6, 3)``.

    Args:
        in_channels (int): Encoder width.
        encoder_stride (int): Image pixels per feature location.
        out_channels (int): Predicted channels per target location.
        out_stride (int): Image pixels per target location.
        embed_dims (int): Width of the first stage.
        depths (sequence): Blocks per stage.
        num_heads (sequence): Heads per stage.
        window_size (int): Swin window (shrunk to small maps).
    """

    def __init__(self,
                 in_channels: int,
                 encoder_stride: int,
                 out_channels: int = 3,
                 out_stride: int = 1,
                 embed_dims: int = 768,
                 depths: Sequence[int] = (2, 6, 2, 2),
                 num_heads: Sequence[int] = (24, 12, 6, 3),
                 window_size: int = 7,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(depths) != len(num_heads):
            raise ValueError('depths and num_heads differ in length')
        n_up = len(depths) - 1
        if encoder_stride % 2**n_up or embed_dims % 2**n_up:
            raise ValueError(f'{n_up} 2x up-sampling stages do not fit '
                             f'encoder stride {encoder_stride} / width '
                             f'{embed_dims}')
        self.in_channels = in_channels
        self.encoder_stride = encoder_stride
        self.out_channels = out_channels
        self.out_stride = out_stride
        self.proj = nn.Conv2d(in_channels, embed_dims, kernel_size=1)
        self.expands = nn.ModuleList()
        self.stages = nn.ModuleList()
        dim = embed_dims
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            if i > 0:
                self.expands.append(PatchExpand(dim))
                dim //= 2
            self.stages.append(
                SwinBlockSequence(dim, depth, heads, window_size=window_size,
                                  downsample=False))
        self.norm = nn.LayerNorm(dim)
        self.pred = _to_target_stride(dim, out_channels,
                                      encoder_stride // 2**n_up, out_stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        hw = tuple(x.shape[-2:])
        x = x.flatten(2).transpose(1, 2)
        for i, stage in enumerate(self.stages):
            if i > 0:
                x, hw = self.expands[i - 1](x, hw)
            x, hw = stage(x, hw)
        x = self.norm(x)
        x = x.transpose(1, 2).reshape(x.shape[0], -1, *hw)
        return self.pred(x)
