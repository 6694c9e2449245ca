"""A ViT that takes explicit patch masks for MIM and serves dense maps for transfer."""
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn

from mmpretrain.models import VisionTransformer
from mmpretrain.models.utils import resize_pos_embed
from mmpretrain.registry import MODELS
from ..utils import (CheckedLoadingMixin, init_linear_layernorm,
                     sincos_pos_embed_2d, visible_first_order)


@MODELS.register_module()
class MaskedViT(CheckedLoadingMixin, VisionTransformer):
    """Vision Transformer for masked image modeling and its transfer.

    ``forward(x, mask)`` with a (B, L) or (B, h, w) mask (1 = masked) runs
    pre-training in one of two styles:

    - ``mask_mode='drop'`` (MAE, HPM, SIM): only the visible patches are
      encoded, in raster order. Returns ``(tokens, ids_restore)`` where
      ``tokens`` is (B, 1 + V, C) with the cls token first and ``ids_restore``
      restores raster order after ``[visible, masked]`` concatenation (what
      MAE's decoder expects). ``forward(x, mask, num_masked)`` takes the
      number of masked patches per image when the caller knows it, so that
      it need not be read back from the device.
    - ``mask_mode='replace'``: a learnable mask token replaces the masked patch
      embeddings (before the position embedding is added, so masked tokens
      keep their position); returns the (B, 1 + L, C) tokens. With
      ``mask_corruption=(p_token, p_random, p_keep)`` a masked patch gets the
      mask token, another patch's embedding (uniform over the batch's
      patches) or keeps its own, with these probabilities (ViT's masked
      patch prediction: ``(0.8, 0.1, 0.1)``).

    ``forward(x)`` (no mask) is mmpretrain's ViT forward: a tuple of outputs
    at ``out_indices`` in ``out_type`` format (``'featmap'``: NCHW maps, the
    default here, for detection / segmentation / evaluation), with the position
    embedding interpolated to the input size.

    Args:
        arch: mmpretrain ViT arch name ('tiny', 'small', 'base', 'large',
            'huge', ...) or a dict with embed_dims, num_layers, num_heads,
            feedforward_channels.
        mask_mode: ``'drop'`` or ``'replace'``.
        pos_embed_type: ``'sincos'`` (fixed 2-D sin-cos, not trained, as in
            MAE / HPM / SIM) or ``'learnable'``.
        sincos_layout: ``'xy'`` (MAE, HPM) or ``'yx'`` (SIM); see
            docs/mae_simmim.md and docs/sim.md.
        frozen_patch_embed: keep the (random) patch embedding fixed (SIM).
        init_mode: ``'mae'`` (xavier-uniform Linear layers and patch conv,
            normal(0.02) tokens, as the MAE reference) or ``'default'``
            (mmpretrain's initialisation).
        mask_corruption: ``(p_token, p_random, p_keep)`` for
            ``mask_mode='replace'``; None = always the mask token.
        frozen_stages: mmpretrain's partial fine-tuning switch: the patch
            embedding, position / cls tokens and the first ``frozen_stages``
            blocks (all blocks and the final norms when it equals the
            depth) are frozen and stay in eval mode through ``train()``:
            ``depth - k`` trains the last k blocks plus what follows.
        Other arguments are those of mmpretrain's ``VisionTransformer``.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 img_size: int = 224,
                 patch_size: int = 16,
                 out_indices: Union[Sequence[int], int] = -1,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 final_norm: bool = True,
                 out_type: str = 'featmap',
                 mask_mode: str = 'drop',
                 pos_embed_type: str = 'sincos',
                 sincos_layout: str = 'xy',
                 frozen_patch_embed: bool = False,
                 init_mode: str = 'mae',
                 mask_corruption: Optional[Sequence[float]] = None,
                 **kwargs) -> None:
        super().__init__(
            arch=arch,
            img_size=img_size,
            patch_size=patch_size,
            out_indices=out_indices,
            drop_rate=drop_rate,
            drop_path_rate=drop_path_rate,
            norm_cfg=norm_cfg,
            final_norm=final_norm,
            out_type=out_type,
            with_cls_token=True,
            **kwargs)
        img_hw = self.patch_embed.init_input_size
        if img_hw[0] % patch_size or img_hw[1] % patch_size:
            raise ValueError(f'img_size {img_size} is not divisible by '
                             f'patch_size {patch_size}')
        if mask_mode not in ('drop', 'replace'):
            raise ValueError(f"mask_mode must be 'drop' or 'replace', "
                             f'got {mask_mode!r}')
        if pos_embed_type not in ('sincos', 'learnable'):
            raise ValueError("pos_embed_type must be 'sincos' or "
                             f"'learnable', got {pos_embed_type!r}")
        if init_mode not in ('mae', 'default'):
            raise ValueError(f"init_mode must be 'mae' or 'default', "
                             f'got {init_mode!r}')
        self.mask_mode = mask_mode
        if mask_corruption is not None:
            if mask_mode != 'replace' or len(mask_corruption) != 3 or \
                    min(mask_corruption) < 0 or \
                    abs(sum(mask_corruption) - 1) > 1e-6:
                raise ValueError(
                    'mask_corruption must be three probabilities (mask '
                    "token, random patch, keep) summing to 1, with mask_mode="
                    f"'replace'; got {mask_corruption} with {mask_mode!r}")
            mask_corruption = tuple(float(p) for p in mask_corruption)
        self.mask_corruption = mask_corruption
        self.pos_embed_type = pos_embed_type
        self.sincos_layout = sincos_layout
        self.init_mode = init_mode
        self.num_patches = self.patch_resolution[0] * self.patch_resolution[1]
        if pos_embed_type == 'sincos':
            self.pos_embed.requires_grad = False
        self.mask_token = (
            nn.Parameter(torch.zeros(1, 1, self.embed_dims))
            if mask_mode == 'replace' else None)
        self.frozen_patch_embed = frozen_patch_embed
        if frozen_patch_embed:
            for param in self.patch_embed.parameters():
                param.requires_grad = False

    def init_weights(self) -> None:
        super().init_weights()
        if self.loads_pretrained:  # loaded by super(): keep it
            return
        if self.init_mode == 'mae':
            init_linear_layernorm(self)  # xavier Linear, as MAE
            w = self.patch_embed.projection.weight.data
            nn.init.xavier_uniform_(w.view(w.shape[0], -1))
            nn.init.zeros_(self.patch_embed.projection.bias)
            if self.cls_token is not None:
                nn.init.normal_(self.cls_token, std=.02)
            if self.mask_token is not None:
                nn.init.normal_(self.mask_token, std=.02)
        if self.pos_embed_type == 'sincos':
            self.pos_embed.data.copy_(
                sincos_pos_embed_2d(*self.patch_resolution, self.embed_dims,
                                    self.sincos_layout, cls_token=True))

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen_patch_embed:
            self.patch_embed.eval()
        if mode and self.frozen_stages > 0:
            self._freeze_stages()  # frozen blocks stay in eval mode
        return self

    def _embed_patches(self, x: torch.Tensor):
        """Patch embeddings and the position table (resized to the input)."""
        x, patch_resolution = self.patch_embed(x)
        pos_embed = resize_pos_embed(
            self.pos_embed,
            self.patch_resolution,
            patch_resolution,
            mode=self.interpolate_mode,
            num_extra_tokens=self.num_extra_tokens)
        return x, pos_embed

    def substitute_masked(self, x: torch.Tensor,
                          mask: torch.Tensor) -> torch.Tensor:
        """Patch embeddings (B, L, C) with the masked ones replaced (mask
        token, or the ``mask_corruption`` mix of mask token / random patch /
        unchanged)."""
        token = self.mask_token.to(x.dtype)
        if self.mask_corruption is None:
            w = mask.unsqueeze(-1).to(x.dtype)
            return x * (1. - w) + token * w
        p_token, p_random, _ = self.mask_corruption
        draw = torch.rand(mask.shape, device=x.device)
        use_token = mask & (draw < p_token)
        use_random = mask & (draw >= p_token) & (draw < p_token + p_random)
        B, L, C = x.shape
        others = torch.randint(B * L, (B, L), device=x.device)
        random_patches = x.reshape(B * L, C)[others]
        x = torch.where(use_random.unsqueeze(-1), random_patches, x)
        return torch.where(use_token.unsqueeze(-1), token.expand_as(x), x)

    def _encode(self, x: torch.Tensor, cls_pos: torch.Tensor) -> torch.Tensor:
        cls_token = (self.cls_token + cls_pos).expand(x.shape[0], -1, -1)
        x = torch.cat((cls_token, x), dim=1)
        x = self.drop_after_pos(x)
        x = self.pre_norm(x)
        for layer in self.layers:
            x = layer(x)
        if self.final_norm:
            x = self.ln1(x)
        return x

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None,
                num_masked: Optional[int] = None):
        if mask is None:
            return super().forward(x)
        x, pos_embed = self._embed_patches(x)
        cls_pos = pos_embed[:, :1]
        mask = mask.flatten(1).bool()
        if mask.shape[1] != x.shape[1]:
            raise ValueError(f'mask has {mask.shape[1]} patches but the image '
                             f'has {x.shape[1]}')
        if self.mask_mode == 'replace':
            x = self.substitute_masked(x, mask) + pos_embed[:, 1:]
            return self._encode(x, cls_pos)
        x = x + pos_embed[:, 1:]
        ids_shuffle, ids_restore, num_visible = visible_first_order(
            mask, num_masked)
        ids_keep = ids_shuffle[:, :num_visible]
        x = torch.gather(
            x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        return self._encode(x, cls_pos), ids_restore
