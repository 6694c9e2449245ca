"""ViTDet's plain-ViT backbone: window attention with decomposed relative
position, a few global blocks, no cls token.

The detection backbone of ViTDet (Li et al., "Exploring Plain Vision
Transformer Backbones for Object Detection"; detectron2
``projects/ViTDet``, ported by mmdet as ``projects/ViTDet``), which MAE, HPM
and SIM use for COCO. It is :class:`MaskedViT` (the same parameter names, so
an MAE / HPM / SIM pre-training checkpoint loads with ``prefix='backbone.'``)
with these changes:

- the blocks are mmpretrain's SAM encoder layers (window partition /
  unpartition with padding, decomposed relative position ``rel_pos_h`` /
  ``rel_pos_w`` of shape ``(2 * size - 1, head_dim)``, zero-initialised):
  blocks in ``window_block_indexes`` attend within ``window_size`` windows
  (table size from the window), the others globally over the whole grid
  (table size from ``img_size // patch_size``); ViTDet's stochastic depth
  also drops the attention branch;
- the absolute position table keeps the pre-training grid
  (``pretrain_img_size``, with its unused cls row) and is interpolated
  (bicubic) to the input grid in every forward, as ViTDet's ``get_abs_pos``;
- the cls token is not used (the checkpoint's ``cls_token`` is reported as
  unexpected, as is the pre-training final norm ``ln1``; the relative
  position tables are reported as missing: all by design).

``forward(x)`` returns a tuple of NCHW maps of the blocks in ``out_indices``
(ViTDet: the last one, stride ``patch_size``).
"""
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn.bricks import DropPath
from mmengine.model import ModuleList

from mmpretrain.models.backbones.vit_sam import (TransformerEncoderLayer,
                                                 window_partition,
                                                 window_unpartition)
from mmpretrain.models.utils import resize_pos_embed
from mmpretrain.registry import MODELS
from .masked_vit import MaskedViT



def default_global_blocks(num_layers: int) -> tuple:
    """The last block of each quarter of the depth: ViTDet's global blocks
    (detectron2 projects/ViTDet: base 2, 5, 8, 11; large 5, 11, 17, 23;
    huge 7, 15, 23, 31)."""
    if num_layers % 4:
        raise ValueError('give window_block_indexes: the depth '
                         f'{num_layers} is not a multiple of 4')
    step = num_layers // 4
    return tuple(step * (i + 1) - 1 for i in range(4))


class WindowedBlock(TransformerEncoderLayer):
    """mmpretrain's SAM encoder layer with stochastic depth on the attention
    branch too (ViTDet's ``Block``: ``x = shortcut + drop_path(attn(...))``).

    Input and output are (B, H, W, C) token grids.
    """

    def __init__(self, *args, drop_path_rate: float = 0., **kwargs):
        super().__init__(*args, drop_path_rate=drop_path_rate, **kwargs)
        self.drop_path = (DropPath(drop_path_rate)
                          if drop_path_rate > 0. else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.ln1(x)
        if self.window_size > 0:
            hw = x.shape[1], x.shape[2]
            x, pad_hw = window_partition(x, self.window_size)
        x = self.attn(x)
        if self.window_size > 0:
            x = window_unpartition(x, self.window_size, pad_hw, hw)
        x = shortcut + self.drop_path(x)
        # the FFN adds its own drop path before the residual sum
        return self.ffn(self.ln2(x), identity=x)


@MODELS.register_module()
class WindowedViT(MaskedViT):
    """ViTDet's plain ViT for detection, loading MaskedViT checkpoints.

    Args:
        arch: as :class:`MaskedViT` ('base', 'large', 'huge' or a dict).
        img_size (int): detection input size the relative position tables
            of the global blocks are sized for. Defaults to 1024.
        patch_size (int): Defaults to 16.
        pretrain_img_size (int): image size of the pre-training; the
            absolute position table keeps its grid. Defaults to 224.
        window_size (int): window side in patches. Defaults to 14.
        window_block_indexes (Sequence[int], optional): blocks with window
            attention; the others attend globally. Defaults to every block
            but the last of each quarter of the depth (ViTDet).
        use_rel_pos (bool): decomposed relative position in every block.
            Defaults to True.
        out_indices: blocks whose outputs are returned. Defaults to -1.
        drop_path_rate (float): stochastic depth, linear over the blocks.
        norm_cfg (dict): Defaults to LayerNorm with eps 1e-6.
        Other arguments are those of :class:`MaskedViT` (``final_norm`` is
        always False, ``out_type`` always ``'featmap'``).
    """

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 img_size: int = 1024,
                 patch_size: int = 16,
                 pretrain_img_size: int = 224,
                 window_size: int = 14,
                 window_block_indexes: Optional[Sequence[int]] = None,
                 use_rel_pos: bool = True,
                 out_indices: Union[Sequence[int], int] = -1,
                 drop_path_rate: float = 0.,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 qkv_bias: bool = True,
                 **kwargs) -> None:
        for key in ('final_norm', 'out_type', 'mask_mode'):
            if key in kwargs:
                raise TypeError(f'WindowedViT does not take {key!r}')
        super().__init__(
            arch=arch,
            img_size=pretrain_img_size,
            patch_size=patch_size,
            out_indices=out_indices,
            drop_path_rate=drop_path_rate,
            norm_cfg=norm_cfg,
            final_norm=False,
            out_type='featmap',
            pos_embed_type='learnable',
            qkv_bias=qkv_bias,
            **kwargs)
        if img_size % patch_size:
            raise ValueError(f'img_size {img_size} is not divisible by '
                             f'patch_size {patch_size}')
        # ViTDet has no cls token (the position table keeps its cls row,
        # unused, so that pre-training tables load unchanged).
        self.cls_token = None
        grid = img_size // patch_size
        self.img_size = img_size
        self.window_size = window_size
        if window_block_indexes is None:
            globals_ = default_global_blocks(self.num_layers)
            window_block_indexes = [
                i for i in range(self.num_layers) if i not in globals_
            ]
        self.window_block_indexes = tuple(int(i) for i in
                                          window_block_indexes)
        bad = [i for i in self.window_block_indexes
               if not 0 <= i < self.num_layers]
        if bad:
            raise ValueError(f'window_block_indexes {bad} are not blocks of '
                             f'a {self.num_layers}-block ViT')
        dpr = torch.linspace(
            0, drop_path_rate, self.num_layers, device='cpu').tolist()
        self.layers = ModuleList([
            WindowedBlock(
                embed_dims=self.embed_dims,
                num_heads=self.arch_settings['num_heads'],
                feedforward_channels=self.arch_settings[
                    'feedforward_channels'],
                drop_path_rate=dpr[i],
                qkv_bias=qkv_bias,
                norm_cfg=norm_cfg,
                use_rel_pos=use_rel_pos,
                window_size=(window_size
                             if i in self.window_block_indexes else 0),
                input_size=(grid, grid)) for i in range(self.num_layers)
        ])

    def forward(self, x: torch.Tensor, mask=None):
        if mask is not None:
            raise ValueError('WindowedViT is a downstream backbone; it '
                             'takes no mask')
        B = x.shape[0]
        x, hw = self.patch_embed(x)
        pos_embed = resize_pos_embed(
            self.pos_embed,
            self.patch_resolution,
            hw,
            mode=self.interpolate_mode,
            num_extra_tokens=self.num_extra_tokens)
        x = x + pos_embed[:, self.num_extra_tokens:]
        x = self.drop_after_pos(x).view(B, hw[0], hw[1], self.embed_dims)
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.out_indices:
                outs.append(x.permute(0, 3, 1, 2).contiguous())
        return tuple(outs)
