"""HiViT backbone for iTPN: pixel / MFM pre-training and dense transfer.

One module serves pre-training (token layout, explicit patch masks) and
downstream use (NCHW maps at strides 4, 8, 16). It reuses mmpretrain's HiViT
pieces (``PatchEmbed``, ``BlockWithRPE``, ``PatchMerge``) and fixes what
mmpretrain's ``HiViT``/``iTPNHiViT`` get wrong for transfer: layer ids for
layer decay, ``frozen_stages``, explicit masks, relative position bias and
absolute position embeddings at other input sizes.
"""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models.backbones.hivit import (BlockWithRPE, PatchEmbed,
                                               PatchMerge)
from mmpretrain.models.utils import resize_pos_embed
from mmpretrain.registry import MODELS
from timm.layers import gen_relative_position_index

from ..utils import (CheckedLoadingMixin, init_linear_layernorm,
                     relative_position_bias, resize_rel_pos_bias,
                     sincos_pos_embed_2d, trunc_normal_02_,
                     visible_first_order)
from ..utils.itpn_layers import iTPNBlock, tokens_to_nchw


def resample_pos_embed_reference(pos: torch.Tensor, src: Tuple[int, int],
                                 dst: Tuple[int, int]) -> torch.Tensor:
    """The reference's ``interpolate_pos_encoding`` resampling.

    Bicubic (align_corners=False) with ``scale_factor = (dst + 0.1) / src``
    (DINO's offset against rounding the output size). The output has
    ``dst`` cells, but the source coordinates are computed from that scale
    factor, not from ``dst / src``: even for ``dst == src`` the table comes
    out shifted by a fraction of a cell and smoothed.
    """
    c = pos.shape[-1]
    p = pos.reshape(1, src[0], src[1], c).permute(0, 3, 1, 2).float()
    p = F.interpolate(
        p,
        scale_factor=((dst[0] + 0.1) / src[0], (dst[1] + 0.1) / src[1]),
        mode='bicubic',
        align_corners=False)
    if tuple(p.shape[-2:]) != tuple(dst):
        raise ValueError(f'cannot resample a {src} table to {dst}')
    return p.permute(0, 2, 3, 1).reshape(1, -1, c).to(pos.dtype)


@MODELS.register_module()
class iTPNBackbone(CheckedLoadingMixin, BaseModule):
    """HiViT for iTPN with explicit masks and dense (NCHW) outputs.

    ``blocks`` is one flat list as in the reference code: stage-1 MLP blocks,
    a ``PatchMerge``, stage-2 MLP blocks, a ``PatchMerge``, the main attention
    blocks (base: 3 + 1 + 3 + 1 + 24 = 32 entries, 30 of them blocks), so
    reference checkpoints map one to one.

    Forward modes:

    - ``forward(x)`` (no mask): tuple of NCHW maps for ``out_indices``
      (0: stride 4, stage-1 output; 1: stride 8; 2: stride 16).
    - ``forward(x, mask)`` with a (B, L) bool mask (1 = masked) on the
      stride-16 grid: token-layout features ``(f4, f8, f16)`` of shapes
      (B, N, 4, 4, C/4), (B, N, 2, 2, C/2), (B, N, C), the inputs of the iTPN
      pyramid. With ``mask_mode='drop'`` (pixel pre-training) the masked
      patches are dropped before the stem and N = visible patches, in raster
      order; with ``'token'`` (the reference CLIP/MFM variant) ``mask_token``
      replaces the masked stride-16 tokens after the stem (the stem sees the
      whole image, a reference quirk); with ``'stem_token'``
      ``stem_mask_token`` replaces the masked patches' stride-4 tokens before
      stage 1, so no stage sees them. N = L for both token modes.

    Args:
        arch (str | dict): 'tiny', 'small', 'base', 'large' or a dict with
            ``embed_dims`` (main width), ``depths`` (numbers of blocks of the
            three stages) and ``num_heads``.
        img_size (int | tuple): Input size the tables are built for.
        patch_size (int): Stride of the main stage. Defaults to 16.
        inner_patches (int): Stride-4 tokens per patch side. Defaults to 4.
        in_channels (int): Image channels.
        stem_mlp_ratio (float): MLP ratio of the two MLP stages.
        mlp_ratio (float): MLP ratio of the main stage.
        qkv_bias (bool): Bias of the qkv projection.
        drop_rate (float): Dropout after MLPs / projections.
        attn_drop_rate (float): Attention dropout.
        drop_path_rate (float): Stochastic depth, spaced linearly over all
            blocks (30 for base).
        norm_cfg (dict): Norm layer config (LN, eps 1e-6 as the reference).
        use_abs_pos_embed (bool): Add an absolute position table after stage 2.
        pos_embed_learnable (bool): Whether that table is trained (True in the
            reference pixel and CLIP code).
        pos_embed_init (str): 'sincos' (MAE layout, reference pixel) or
            'trunc_normal'.
        reference_pos_interp (bool): Add the position table the way the
            reference's ``interpolate_pos_encoding`` does (default): the
            stored table only when the token count equals the table's and the
            grid is the table's, otherwise the table resampled with scale
            factor ``(grid + 0.1) / table grid``
            (:func:`resample_pos_embed_reference`).
            In masked pre-training with dropped patches the token count is
            the number of *visible* patches, so the reference always adds a
            resampled (shifted, smoothed) table there, while fine-tuning at
            the table's size gets the stored one. False: the stored table at
            its own grid and an exact-size bicubic resize at other grids.
        pos_embed_size (int | tuple, optional): Patch grid the absolute table
            is stored on, interpolated to the input's grid at every forward.
            Defaults to the grid of ``img_size``. The reference segmentation
            backbone keeps the 14 x 14 pre-training table at 512 px inputs.
        use_rel_pos_bias (bool): Relative position bias in the main blocks
            (a table per block; resized to other grids when loading and at
            run time).
        layer_scale_init_value (float): Layer scale (0 disables).
        mask_mode (str): 'drop', 'token' or 'stem_token' (see above).
        out_indices (Sequence[int]): Stages returned without a mask.
        frozen_stages (int): -1 freezes nothing; 0 the patch embedding; k >= 1
            also stages 1..k (stage 2 includes the position table, since it
            is added after stage 2; stage 3 is the main stage).
        reference_init (bool): Initialise as the reference code does
            (default): the patch-embedding conv keeps PyTorch's default
            initialisation and the relative position bias tables start at
            zero (the reference never re-initialises either). False: the
            patch conv xavier-uniform as a Linear layer (MAE-style) and the
            bias tables trunc-normal(0.02).
        rescale_init (bool): Divide each block's output projections by
            sqrt(2 * layer id) (BEiT-style init of the reference CLIP code).
        init_cfg (dict, optional): Initialisation config, e.g.
            ``dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
    """

    arch_zoo = {
        **dict.fromkeys(['t', 'tiny'], {
            'embed_dims': 384, 'depths': [2, 2, 10], 'num_heads': 6}),
        **dict.fromkeys(['s', 'small'], {
            'embed_dims': 384, 'depths': [4, 4, 20], 'num_heads': 6}),
        **dict.fromkeys(['b', 'base'], {
            'embed_dims': 512, 'depths': [3, 3, 24], 'num_heads': 8}),
        **dict.fromkeys(['l', 'large'], {
            'embed_dims': 768, 'depths': [2, 2, 40], 'num_heads': 12}),
    }

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 img_size: Union[int, Sequence[int]] = 224,
                 patch_size: int = 16,
                 inner_patches: int = 4,
                 in_channels: int = 3,
                 stem_mlp_ratio: float = 3.,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 use_abs_pos_embed: bool = True,
                 pos_embed_learnable: bool = True,
                 pos_embed_init: str = 'sincos',
                 reference_pos_interp: bool = True,
                 pos_embed_size: Optional[Union[int, Sequence[int]]] = None,
                 use_rel_pos_bias: bool = False,
                 layer_scale_init_value: float = 0.,
                 mask_mode: str = 'drop',
                 out_indices: Sequence[int] = (0, 1, 2),
                 frozen_stages: int = -1,
                 reference_init: bool = True,
                 rescale_init: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if isinstance(arch, str):
            arch = arch.lower()
            if arch not in self.arch_zoo:
                raise KeyError(f'unknown iTPN arch {arch!r}, choose from '
                               f'{sorted(set(self.arch_zoo))}')
            arch = self.arch_zoo[arch]
        elif set(arch) != {'embed_dims', 'depths', 'num_heads'}:
            raise KeyError('a custom arch needs exactly the keys embed_dims, '
                           f'depths, num_heads; got {sorted(arch)}')
        if len(arch['depths']) != 3:
            raise ValueError('iTPN HiViT has three stages, got depths '
                             f'{arch["depths"]}')
        if mask_mode not in ('drop', 'token', 'stem_token'):
            raise ValueError(f'unknown mask_mode {mask_mode!r}')
        if pos_embed_init not in ('sincos', 'trunc_normal'):
            raise ValueError(f'unknown pos_embed_init {pos_embed_init!r}')
        self.embed_dims = arch['embed_dims']
        self.depths = list(arch['depths'])
        self.num_heads = arch['num_heads']
        self.num_blocks = sum(self.depths)
        self.num_main_blocks = self.depths[-1]
        self.patch_size = patch_size
        self.inner_patches = inner_patches
        self.mask_mode = mask_mode
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.use_rel_pos_bias = use_rel_pos_bias
        img_size = (img_size, img_size) if isinstance(img_size, int) \
            else tuple(img_size)
        self.patch_resolution = (img_size[0] // patch_size,
                                 img_size[1] // patch_size)
        Hp, Wp = self.patch_resolution
        self.stage_dims = [self.embed_dims // 4, self.embed_dims // 2,
                           self.embed_dims]

        self.patch_embed = PatchEmbed(
            img_size=img_size,
            patch_size=patch_size,
            inner_patches=inner_patches,
            in_chans=in_channels,
            embed_dim=self.stage_dims[0],
            norm_cfg=norm_cfg)

        if pos_embed_size is None:
            self.pos_embed_grid = self.patch_resolution
        elif isinstance(pos_embed_size, int):
            self.pos_embed_grid = (pos_embed_size, pos_embed_size)
        else:
            self.pos_embed_grid = tuple(pos_embed_size)
        if use_abs_pos_embed:
            self.pos_embed = nn.Parameter(
                torch.zeros(1, self.pos_embed_grid[0] * self.pos_embed_grid[1],
                            self.embed_dims),
                requires_grad=pos_embed_learnable)
        else:
            self.pos_embed = None
        self.pos_embed_init = pos_embed_init
        self.reference_pos_interp = reference_pos_interp
        self.pos_drop = nn.Dropout(p=drop_rate)

        # stochastic depth over the blocks only (the merges have none)
        dpr = [drop_path_rate * i / max(self.num_blocks - 1, 1)
               for i in range(self.num_blocks)]
        self.drop_path_rates = dpr
        self.blocks = nn.ModuleList()
        # layer id of every entry of ``blocks``; a merge shares the id of the
        # block before it (as Swin's downsample layers do in mmpretrain)
        self._block_layer_ids = []
        self._stage_of_entry = []
        block_id = 0
        for stage, depth in enumerate(self.depths):
            dim = self.stage_dims[stage]
            main = stage == 2
            for _ in range(depth):
                self.blocks.append(
                    iTPNBlock(
                        (Hp if Hp == Wp else None) if main else None,
                        dim,
                        self.num_heads if main else 0,
                        mlp_ratio if main else stem_mlp_ratio,
                        qkv_bias,
                        None,
                        drop=drop_rate,
                        attn_drop=attn_drop_rate,
                        drop_path=dpr[block_id],
                        rpe=False,
                        layer_scale_init_value=layer_scale_init_value,
                        norm_cfg=norm_cfg))
                block_id += 1
                self._block_layer_ids.append(block_id)
                self._stage_of_entry.append(stage + 1)
            if not main:
                self.blocks.append(PatchMerge(dim, norm_cfg))
                self._block_layer_ids.append(block_id)
                self._stage_of_entry.append(stage + 1)

        if use_rel_pos_bias:
            # one table per main block, as the reference; the index is shared
            n_rel = (2 * Hp - 1) * (2 * Wp - 1)
            for blk in self.main_blocks:
                blk.attn.relative_position_bias_table = nn.Parameter(
                    torch.zeros(n_rel, self.num_heads))
            self.register_buffer('relative_position_index',
                                 gen_relative_position_index((Hp, Wp)),
                                 persistent=False)

        if mask_mode == 'token':
            self.mask_token = nn.Parameter(torch.zeros(1, 1, self.embed_dims))
        elif mask_mode == 'stem_token':
            self.stem_mask_token = nn.Parameter(
                torch.zeros(1, 1, 1, 1, self.stage_dims[0]))

        self.reference_init = reference_init
        self._init_params(rescale_init)
        self._freeze_stages()

    # ------------------------------------------------------------------ init
    @property
    def main_blocks(self):
        return self.blocks[-self.num_main_blocks:]

    @property
    def stem_blocks(self):
        return self.blocks[:-self.num_main_blocks]

    def _init_params(self, rescale_init: bool) -> None:
        """Initialisation, done at construction: trunc-normal(0.02) Linear
        layers, LayerNorm (1, 0), tables and tokens as documented in the
        class (``reference_init``)."""

        init_linear_layernorm(self, trunc_normal_02_)
        if not self.reference_init:
            # MAE-style: the patch conv initialised like a Linear layer
            w = self.patch_embed.proj.weight.data
            nn.init.xavier_uniform_(w.view([w.shape[0], -1]))
        if self.pos_embed is not None:
            if self.pos_embed_init == 'sincos':
                self.pos_embed.data.copy_(
                    sincos_pos_embed_2d(*self.pos_embed_grid,
                                        self.embed_dims, layout='xy'))
            else:
                trunc_normal_(self.pos_embed, std=.02)
        if self.use_rel_pos_bias and not self.reference_init:
            for blk in self.main_blocks:
                trunc_normal_(blk.attn.relative_position_bias_table, std=.02)
        for name in ('mask_token', 'stem_mask_token'):
            if hasattr(self, name):
                trunc_normal_(getattr(self, name), std=.02)
        if rescale_init:
            for layer_id, blk in enumerate(self.blocks):
                if isinstance(blk, BlockWithRPE):
                    div = math.sqrt(2.0 * (layer_id + 1))
                    if blk.attn is not None:
                        blk.attn.proj.weight.data.div_(div)
                    blk.mlp.fc2.weight.data.div_(div)

    # ------------------------------------------------------ frozen / layers
    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        frozen = [self.patch_embed]
        for entry, stage in zip(self.blocks, self._stage_of_entry):
            if stage <= self.frozen_stages:
                frozen.append(entry)
        for m in frozen:
            m.eval()
            for p in m.parameters():
                p.requires_grad = False
        if self.frozen_stages >= 2:
            self.pos_drop.eval()
            if self.pos_embed is not None:
                self.pos_embed.requires_grad = False
        if self.frozen_stages >= 3:
            for name in ('mask_token', 'stem_mask_token'):
                if hasattr(self, name):
                    getattr(self, name).requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        return self

    def get_layer_depth(self, param_name: str, prefix: str = ''):
        """Layer id for layer-wise lr decay over the blocks.

        0 for the patch embedding, position table and mask tokens, i + 1 for
        the i-th of the 30 (base) blocks (a PatchMerge shares the id of the
        block before it), ``num_blocks + 1`` for everything outside the
        backbone. Returns ``(layer_depth, num_layers)`` with num_layers =
        num_blocks + 2, as mmpretrain's layer-decay constructor expects.
        """
        num_layers = self.num_blocks + 2
        if not param_name.startswith(prefix):
            return num_layers - 1, num_layers
        name = param_name[len(prefix):]
        if name.startswith(('patch_embed', 'pos_embed', 'mask_token',
                            'stem_mask_token')):
            return 0, num_layers
        if name.startswith('blocks.'):
            return self._block_layer_ids[int(name.split('.')[1])], num_layers
        return num_layers - 1, num_layers

    # --------------------------------------------------------------- helpers
    def _pos_embed_for(self, hw: Tuple[int, int],
                       num_tokens: int) -> torch.Tensor:
        """The (1, h*w, C) table added to ``num_tokens`` tokens of an h x w
        patch grid (see ``reference_pos_interp``)."""
        table_hw = self.pos_embed_grid
        if not self.reference_pos_interp:
            return resize_pos_embed(self.pos_embed, table_hw, hw,
                                    num_extra_tokens=0)
        # the reference compares the token count (the visible tokens in
        # masked pre-training) with the table size
        if num_tokens == table_hw[0] * table_hw[1] and tuple(hw) == table_hw:
            return self.pos_embed
        return resample_pos_embed_reference(self.pos_embed, table_hw, hw)

    def _rel_bias(self, blk, hw: Tuple[int, int],
                  keep: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        if not self.use_rel_pos_bias:
            return None
        table = blk.attn.relative_position_bias_table
        if tuple(hw) == tuple(self.patch_resolution):
            index = self.relative_position_index
        else:
            table = resize_rel_pos_bias(table, self.patch_resolution, hw)
            index = gen_relative_position_index(tuple(hw),
                                                device=table.device)
        bias = relative_position_bias(table, index)
        if keep is None:
            return bias
        # visible tokens only: gather rows and columns per image
        B, nv = keep.shape
        n = bias.shape[-1]
        bias = bias[None].expand(B, -1, -1, -1)
        idx = keep[:, None, :, None].expand(-1, bias.shape[1], -1, n)
        bias = bias.gather(2, idx)
        idx = keep[:, None, None, :].expand(-1, bias.shape[1], nv, -1)
        return bias.gather(3, idx)

    # token layout (B, L, k, k, C) / (B, L, C) -> (B, C, h*k, w*k)
    _to_nchw = staticmethod(tokens_to_nchw)

    # --------------------------------------------------------------- forward
    def forward_tokens(self,
                       x: torch.Tensor,
                       mask: Optional[torch.Tensor] = None,
                       mask_mode: Optional[str] = None,
                       hidden_after: Sequence[int] = (),
                       num_masked: Optional[int] = None):
        """Token-layout features of a (possibly masked) image.

        Args:
            x (Tensor): Images (B, C, H, W).
            mask (Tensor, optional): (B, L) or (B, h, w) bool, 1 = masked, on
                the stride-``patch_size`` grid.
            mask_mode (str, optional): Overrides ``self.mask_mode``.
            hidden_after (Sequence[int]): Also return the main-stage tokens
                after this many main blocks (e.g. 18 for the CLIP variant's
                auxiliary branch).
            num_masked (int, optional): Masked patches per image, when the
                caller knows it (``'drop'`` need not read it back from the
                device).

        Returns:
            tuple: ``(f4, f8, f16)`` (see the class docstring), followed by
            one (B, N, C) tensor per ``hidden_after`` entry.
        """
        mode = mask_mode or self.mask_mode
        B, _, H, W = x.shape
        hw = (H // self.patch_size, W // self.patch_size)
        x = self.patch_embed(x)  # (B, L, k, k, C1)
        keep = None
        if mask is not None:
            mask = mask.flatten(1).bool()
            if mask.shape[1] != x.shape[1]:
                raise ValueError(f'mask has {mask.shape[1]} patches, the '
                                 f'image has {x.shape[1]}')
            if mode == 'drop':
                ids_shuffle, _, nv = visible_first_order(mask, num_masked)
                keep = ids_shuffle[:, :nv]
                x = x.gather(
                    1, keep[:, :, None, None, None].expand(-1, -1,
                                                           *x.shape[2:]))
            elif mode == 'stem_token':
                w = mask[:, :, None, None, None].type_as(x)
                x = x * (1. - w) + self.stem_mask_token.to(x.dtype) * w

        feats = []
        for blk in self.stem_blocks:
            if isinstance(blk, PatchMerge):
                feats.append(x)
            x = blk(x)
        x = x[..., 0, 0, :]

        if mask is not None and mode == 'token':
            w = mask[:, :, None].type_as(x)
            x = x * (1. - w) + self.mask_token.to(x.dtype) * w
        if self.pos_embed is not None:
            pos = self._pos_embed_for(hw, x.shape[1]).expand(B, -1, -1)
            if keep is not None:
                pos = pos.gather(1, keep[:, :, None].expand(-1, -1,
                                                            pos.shape[-1]))
            x = x + pos
        x = self.pos_drop(x)

        hidden = {}
        for i, blk in enumerate(self.main_blocks):
            x = blk(x, self._rel_bias(blk, hw, keep))
            if i + 1 in hidden_after:
                hidden[i + 1] = x
        return (feats[0], feats[1], x) + tuple(hidden[n] for n in hidden_after)

    def forward(self, x: torch.Tensor,
                mask: Optional[torch.Tensor] = None,
                num_masked: Optional[int] = None) -> tuple:
        """Token features with a mask, NCHW maps (``out_indices``) without.

        Args:
            x (Tensor): Images (B, C, H, W); H and W divisible by patch_size.
            mask (Tensor, optional): (B, L) bool patch mask, 1 = masked.
            num_masked (int, optional): Masked patches per image, if known.
        """
        if mask is not None:
            return self.forward_tokens(x, mask, num_masked=num_masked)
        hw = (x.shape[2] // self.patch_size, x.shape[3] // self.patch_size)
        feats = self.forward_tokens(x)
        return tuple(self._to_nchw(feats[i], hw) for i in self.out_indices)
