"""MAE: encode the visible patches, reconstruct the masked ones (METHODS.md s.1)."""
from typing import Dict, List, Optional

import torch

from mmpretrain.registry import MODELS
from .base import MIMSelfSupervisor


@MODELS.register_module()
class MAEPretrainer(MIMSelfSupervisor):
    """Masked autoencoder pre-training.

    Composes a ``MaskedViT`` backbone (``mask_mode='drop'``), an
    ``MAEDecoder`` neck and mmpretrain's ``MAEPretrainHead`` (masked per-patch
    MSE, ``norm_pix`` with unbiased variance). The mask comes from the
    pipeline when present (see :class:`MIMSelfSupervisor`).
    """

    def predict_patches(self, inputs: torch.Tensor,
                        mask: torch.Tensor) -> torch.Tensor:
        """Decoder output for every patch, (B, L, p*p*C), in target space."""
        latent, ids_restore = self.backbone(inputs, mask)
        return self.neck(latent, ids_restore)

    def reconstruct(self, inputs: torch.Tensor,
                    mask: torch.Tensor) -> torch.Tensor:
        pred = self.predict_patches(inputs, mask)
        if self.head.norm_pix:
            # undo the per-patch standardisation with the true patch stats
            target = self.head.patchify(inputs)
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            pred = pred * (var + 1.e-6)**.5 + mean
        return self.head.unpatchify(pred)

    def loss(self, inputs: torch.Tensor, data_samples: List,
             **kwargs) -> Dict[str, torch.Tensor]:
        mask = self.get_mask(inputs, data_samples)
        pred = self.predict_patches(inputs, mask)
        loss = self.head.loss(pred, inputs, mask.to(pred.dtype))
        return dict(loss=loss)
