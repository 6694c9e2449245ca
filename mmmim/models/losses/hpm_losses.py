"""HPM's loss-prediction losses and per-patch reconstruction losses (Wang et
al., Hard Patches Mining for Masked Image Modeling, CVPR 2023; docs/hpm.md)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmpretrain.registry import MODELS


def relative_ranking_loss(pred: torch.Tensor, target: torch.Tensor,
                          eps: float = 1e-6) -> torch.Tensor:
    """HPM's relative loss: BCE over all ordered pairs of patches per image.

    For every image and every ordered pair (i, j) with ``target_i !=
    target_j``: ``y = [target_j > target_i]``, ``d = pred_j - pred_i`` and
    ``-[y log(sigmoid(d) + eps) + (1 - y) log(1 - sigmoid(d) + eps)]``; the sum
    over images and pairs is divided by the number of valid pairs (ties are
    excluded from both). Vectorised: memory O(B M^2).

    Args:
        pred (Tensor): Predicted losses of the masked patches, (B, M).
        target (Tensor): Their actual (detached) losses, (B, M).
        eps (float): Added inside the logs, as the reference.
    """
    pred = pred.float()
    target = target.float()
    # [b, i, j] compares patch j against patch i
    positive = target.unsqueeze(1) > target.unsqueeze(2)
    negative = target.unsqueeze(1) < target.unsqueeze(2)
    prob = torch.sigmoid(pred.unsqueeze(1) - pred.unsqueeze(2))
    loss = -(positive * torch.log(prob + eps) +
             negative * torch.log(1 - prob + eps))
    num_valid = (positive | negative).sum()
    # all-tie batches have no valid pair: return a zero that keeps the graph
    return loss.sum() / num_valid.clamp(min=1)


def standardized_mse_loss(pred: torch.Tensor, target: torch.Tensor,
                          eps: float = 1e-6) -> torch.Tensor:
    """HPM's MSE variant: regress onto per-image standardised losses.

    ``t = (target - mean) / sqrt(var + eps)`` per image (unbiased variance
    over its masked patches), then ``mean((pred - t)^2)``.

    Args:
        pred (Tensor): Predicted losses of the masked patches, (B, M).
        target (Tensor): Their actual (detached) losses, (B, M).
        eps (float): Added to the variance.
    """
    pred = pred.float()
    target = target.float()
    mean = target.mean(dim=1, keepdim=True)
    var = target.var(dim=1, keepdim=True)
    target = (target - mean) / (var + eps)**.5
    return ((pred - target)**2).mean()


def patch_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-patch mean squared error over the last dim: (B, L, D) -> (B, L)."""
    return ((pred.float() - target.float())**2).mean(dim=-1)


def patch_cosine_distance(pred: torch.Tensor,
                          target: torch.Tensor) -> torch.Tensor:
    """Per-patch sum over channels of (l2n(pred) - l2n(target))^2, (B, L).

    The reference's loss for feature targets (CLIP / DINO / EMA features).
    """
    pred = F.normalize(pred.float(), p=2, dim=-1)
    target = F.normalize(target.float(), p=2, dim=-1)
    return ((pred - target)**2).sum(dim=-1)


class _WeightedLoss(nn.Module):
    """``loss_weight * loss_fn(pred, target)``, registered per ``loss_fn``."""

    loss_fn = None

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor,
                target: torch.Tensor) -> torch.Tensor:
        return self.loss_weight * type(self).loss_fn(pred, target)


@MODELS.register_module()
class HPMRelativeLoss(_WeightedLoss):
    """Registered wrapper of :func:`relative_ranking_loss` (HPM's default).

    Args:
        loss_weight (float): Multiplier of the loss. Defaults to 1.
    """

    loss_fn = staticmethod(relative_ranking_loss)


@MODELS.register_module()
class HPMStandardizedMSELoss(_WeightedLoss):
    """Registered wrapper of :func:`standardized_mse_loss`.

    Args:
        loss_weight (float): Multiplier of the loss. Defaults to 1.
    """

    loss_fn = staticmethod(standardized_mse_loss)
