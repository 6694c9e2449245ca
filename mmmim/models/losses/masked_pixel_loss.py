"""SimMIM's masked L1 with the reference's epsilon."""
import torch
import torch.nn as nn

from mmpretrain.registry import MODELS


@MODELS.register_module()
class MaskedPixelL1Loss(nn.Module):
    """L = sum |x - x_hat| * M / (sum M + eps) / C  (SimMIM reference).

    ``M`` is the pixel mask (B, 1, H, W) and broadcasts over the C channels,
    so ``sum M`` counts masked pixels once; mmpretrain's
    ``PixelReconstructionLoss`` omits ``eps``.
    """

    def __init__(self, channel: int = 3, eps: float = 1e-5):
        super().__init__()
        self.channel = channel
        self.eps = eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        loss = (pred - target).abs() * mask
        return loss.sum() / (mask.sum() + self.eps) / self.channel
