"""SimMIM's ViT: BEiT-style layers, a mask token that replaces masked patches."""
import math

import torch
import torch.nn.functional as F
from mmengine.model.weight_init import trunc_normal_

from mmpretrain.models import BEiTPretrainViT
from mmpretrain.models.utils import BEiTAttention
from mmpretrain.registry import MODELS
from ..utils import (CheckedLoadingMixin, fused_multihead_attention,
                     init_linear_layernorm, relative_position_bias)


def trunc_normal_one_sigma_(tensor: torch.Tensor, std: float = .02):
    """SimMIM's truncated normal: truncated at +-1 sigma, not +-2."""
    return trunc_normal_(tensor, mean=0., std=std, a=-std, b=std)


class FusedBEiTAttention(BEiTAttention):
    """mmpretrain's ``BEiTAttention`` computed with fused
    ``scaled_dot_product_attention`` (the relative position bias as the
    additive mask) instead of materialising the softmax in Python; same
    parameters, same result."""

    def forward(self, x: torch.Tensor, rel_pos_bias=None) -> torch.Tensor:
        if self.bias == 'qv_bias':
            qkv_bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias),
                                  self.v_bias))
            qkv = F.linear(x, self.qkv.weight, qkv_bias)
        else:
            qkv = self.qkv(x)
        bias = None
        if self.relative_position_bias_table is not None:
            bias = relative_position_bias(self.relative_position_bias_table,
                                          self.relative_position_index)
        if rel_pos_bias is not None:
            bias = rel_pos_bias if bias is None else bias + rel_pos_bias
        x = fused_multihead_attention(
            qkv, self.num_heads, bias,
            dropout_p=self.attn_drop.p if self.training else 0.,
            scale=self.scale)
        return self.proj_drop(self.proj(x))


@MODELS.register_module()
class SimMIMViT(CheckedLoadingMixin, BEiTPretrainViT):
    """ViT for SimMIM (Xie et al., CVPR 2022; docs/mae_simmim.md), on
    mmpretrain's ``BEiTPretrainViT``.

    Defaults are the reference's: no absolute position embedding, one relative
    position bias table shared by all layers, layer scale 0.1 on both residual
    branches, q/v biases (k bias fixed at 0). ``forward(x, mask)`` substitutes
    the mask token for masked patch embeddings and returns ``(tokens,)`` with
    tokens (B, 1 + L, C); ``forward(x)`` (no mask) returns outputs in
    ``out_type`` format (NCHW maps with ``'featmap'``) for transfer.

    Args:
        init_mode (str): ``'simmim'``: every truncated-normal init (std 0.02,
            Linear weights, cls and mask tokens) truncated at +-1 sigma, zero
            biases, LayerNorm (1, 0), then the attention and MLP output
            projections of block l divided by sqrt(2 l), as the reference.
            ``'beit'``: mmpretrain's BEiT initialisation.
        Other arguments are those of ``BEiTPretrainViT``.
    """

    def __init__(self, *args, drop_path_rate: float = 0.1,
                 out_type: str = 'featmap', init_mode: str = 'simmim',
                 **kwargs):
        super().__init__(
            *args, drop_path_rate=drop_path_rate, out_type=out_type, **kwargs)
        for layer in self.layers:  # same parameters, fused attention
            layer.attn.__class__ = FusedBEiTAttention
        if init_mode not in ('simmim', 'beit'):
            raise ValueError(f"init_mode must be 'simmim' or 'beit', "
                             f'got {init_mode!r}')
        self.init_mode = init_mode

    def init_weights(self) -> None:
        if self.init_mode == 'beit' or self.loads_pretrained:
            return super().init_weights()
        init_linear_layernorm(self, trunc_normal_one_sigma_)
        trunc_normal_one_sigma_(self.cls_token)
        trunc_normal_one_sigma_(self.mask_token)
        if self.pos_embed is not None:
            trunc_normal_one_sigma_(self.pos_embed)
        for layer_id, layer in enumerate(self.layers, start=1):
            layer.attn.proj.weight.data.div_(math.sqrt(2. * layer_id))
            layer.ffn.layers[1].weight.data.div_(math.sqrt(2. * layer_id))

    def forward(self, x: torch.Tensor, mask: torch.Tensor = None):
        # the parent requires ``mask``; without one this is the dense forward
        return super().forward(x, mask)

    @property
    def num_patches(self) -> int:
        return self.patch_resolution[0] * self.patch_resolution[1]
