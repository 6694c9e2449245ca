"""MAE's reconstruction decoder with the reference's initialisation and pos layout."""
import torch
import torch.nn as nn

from mmpretrain.models import MAEPretrainDecoder
from mmpretrain.registry import MODELS
from ..utils import (CheckedLoadingMixin, init_linear_layernorm,
                     sincos_pos_embed_2d)


@MODELS.register_module()
class MAEDecoder(CheckedLoadingMixin, MAEPretrainDecoder):
    """mmpretrain's ``MAEPretrainDecoder`` initialised as the MAE reference.

    Differences from the parent: the fixed decoder position table uses the
    reference's ``'xy'`` layout by default (``sincos_layout``), every Linear is
    xavier-uniform with zero bias and LayerNorms are (1, 0) without needing an
    ``init_cfg``, and :meth:`embed_tokens` exposes the token sequence before
    the blocks (HPM's loss predictor reads the same sequence).

    Args:
        sincos_layout (str): ``'xy'`` (MAE / HPM reference) or ``'yx'``
            (mmpretrain's table).
        Other arguments are those of ``MAEPretrainDecoder``.
    """

    def __init__(self, *args, sincos_layout: str = 'xy', **kwargs):
        super().__init__(*args, **kwargs)
        self.sincos_layout = sincos_layout
        side = int(self.num_patches**.5)
        if side * side != self.num_patches:
            raise ValueError('MAEDecoder needs a square patch grid, got '
                             f'num_patches={self.num_patches}')

    def init_weights(self) -> None:
        super().init_weights()
        if self.loads_pretrained:  # loaded by super(): keep it
            return
        side = int(self.num_patches**.5)
        self.decoder_pos_embed.data.copy_(
            sincos_pos_embed_2d(side, side, self.decoder_pos_embed.shape[-1],
                                self.sincos_layout, cls_token=True))
        init_linear_layernorm(self)  # xavier Linear, as MAE
        nn.init.normal_(self.mask_token, std=.02)

    def embed_tokens(self, x: torch.Tensor,
                     ids_restore: torch.Tensor) -> torch.Tensor:
        """Embed [cls, visible] tokens, add mask tokens, restore raster order
        and add the position table: the decoder blocks' input (B, 1 + L, C)."""
        if ids_restore.shape[1] != self.num_patches:
            raise ValueError(f'the decoder was built for {self.num_patches} '
                             f'patches, got {ids_restore.shape[1]}')
        x = self.decoder_embed(x)
        num_masked = ids_restore.shape[1] + 1 - x.shape[1]
        mask_tokens = self.mask_token.to(x.dtype).expand(
            x.shape[0], num_masked, -1)
        x_ = torch.cat([x[:, 1:], mask_tokens], dim=1)
        x_ = torch.gather(
            x_, 1, ids_restore.unsqueeze(-1).expand(-1, -1, x.shape[2]))
        x = torch.cat([x[:, :1], x_], dim=1)
        return x + self.decoder_pos_embed

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Blocks, norm and prediction; drops the cls output: (B, L, C_out)."""
        for block in self.decoder_blocks:
            x = block(x)
        x = self.decoder_pred(self.decoder_norm(x))
        return x[:, 1:]

    def forward(self, x: torch.Tensor,
                ids_restore: torch.Tensor) -> torch.Tensor:
        return self.decode(self.embed_tokens(x, ids_restore))
