"""Loss heads of iTPN pre-training."""
from typing import Optional

import torch
from mmpretrain.models.heads import MAEPretrainHead
from mmpretrain.registry import MODELS


@MODELS.register_module()
class iTPNPixelHead(MAEPretrainHead):
    """MAE's masked pixel MSE with normalised targets, as iTPN computes it.

    The target patch is normalised by its mean and **unbiased** variance
    (``(x - mean) / sqrt(var + 1e-6)``); the loss is the per-patch MSE
    averaged over masked patches. The reference ignores its ``norm_pix_loss``
    flag and always normalises, hence ``norm_pix=True`` by default.

    Args:
        loss (dict): Reconstruction loss config (L2 over masked patches).
        norm_pix (bool): Normalise target pixels per patch.
        patch_size (int): Patch size.
        in_channels (int): Image channels.
    """

    def __init__(self,
                 loss: Optional[dict] = None,
                 norm_pix: bool = True,
                 patch_size: int = 16,
                 in_channels: int = 3) -> None:
        loss = loss or dict(type='PixelReconstructionLoss', criterion='L2')
        super().__init__(loss=loss, norm_pix=norm_pix, patch_size=patch_size,
                         in_channels=in_channels)

    def loss(self, pred: torch.Tensor, target: torch.Tensor,
             mask: torch.Tensor) -> torch.Tensor:
        """Masked pixel loss; ``mask`` (B, L), 1 = masked."""
        return super().loss(pred, target, mask.flatten(1).to(pred.dtype))
