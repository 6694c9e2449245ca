"""SimMIM (ViT): mask tokens in, pixels of the masked patches out (METHODS.md s.2)."""
from typing import Dict, List

import torch

from mmpretrain.registry import MODELS
from .base import MIMSelfSupervisor


@MODELS.register_module()
class SimMIMPretrainer(MIMSelfSupervisor):
    """SimMIM pre-training of a ViT.

    Composes a ``SimMIMViT`` (or ``MaskedViT`` with ``mask_mode='replace'``)
    backbone, mmpretrain's ``SimMIMLinearDecoder`` neck (1x1 conv +
    PixelShuffle) and ``SimMIMHead`` with ``MaskedPixelL1Loss``. The pipeline
    normally gives the mask (``RandomMaskGenerator`` with
    ``mask_patch_size=32``); without one, a per-patch random mask is drawn.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        patch = self.backbone.patch_embed.projection.kernel_size[0]
        conv = self.neck.decoder[0]
        problems = []
        if conv.in_channels != self.backbone.embed_dims:
            problems.append(f'decoder in_channels={conv.in_channels} but the '
                            f'backbone is {self.backbone.embed_dims} wide')
        if conv.out_channels != patch * patch * 3:
            problems.append(f'decoder encoder_stride does not match the '
                            f'backbone patch_size {patch}')
        if getattr(self.head, 'patch_size', patch) != patch:
            problems.append(f'head patch_size={self.head.patch_size} but the '
                            f'backbone patch_size is {patch}')
        if problems:
            raise ValueError('SimMIMPretrainer: ' + '; '.join(problems))

    def predict_pixels(self, inputs: torch.Tensor,
                       mask: torch.Tensor) -> torch.Tensor:
        """Reconstructed image (B, C, H, W) in normalised pixel space."""
        tokens = self.backbone(inputs, mask)
        if isinstance(tokens, (tuple, list)):
            tokens = tokens[-1]
        h, w = self.backbone.patch_resolution
        # drop the cls token, tokens -> NCHW map for the 1x1-conv decoder
        feat = tokens[:, 1:].transpose(1, 2).reshape(tokens.shape[0], -1, h, w)
        return self.neck(feat)

    def reconstruct(self, inputs: torch.Tensor,
                    mask: torch.Tensor) -> torch.Tensor:
        return self.predict_pixels(inputs, mask)

    def loss(self, inputs: torch.Tensor, data_samples: List,
             **kwargs) -> Dict[str, torch.Tensor]:
        mask = self.get_mask(inputs, data_samples)
        h, w = self.backbone.patch_resolution
        pred = self.predict_pixels(inputs, mask)
        loss = self.head.loss(pred, inputs,
                              mask.view(-1, h, w).to(pred.dtype))
        return dict(loss=loss)
