"""UniGrad loss (SIM): pull predictions to targets, push along the targets'
correlation, with the correlation averaged over all processes."""
import torch
import torch.nn as nn
from mmengine import dist

from mmpretrain.registry import MODELS


@MODELS.register_module()
class UniGradLoss(nn.Module):
    """``L = (pos + neg_weight * neg) / D`` in float32.

    With prediction rows ``p`` and target rows ``t`` (``N`` rows, ``D``
    channels): ``pos = (1/N) sum ||p - t||^2``, ``C = T^T T / N`` averaged
    over all processes (``all_reduce``) and carrying no gradient, and
    ``neg = (1/N) sum p^T C p``.

    Args:
        neg_weight (float): ``lambda``. Defaults to 0.02 (SIM).
        mode (str): ``'dense'`` (every token is a row; the SIM reference),
            ``'global'`` (each image's token average is a row; the paper's
            global variant) or ``'both'`` (their sum). Defaults to 'dense'.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 neg_weight: float = 0.02,
                 mode: str = 'dense',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if mode not in ('dense', 'global', 'both'):
            raise ValueError("mode must be 'dense', 'global' or 'both', got "
                             f'{mode!r}')
        self.neg_weight = neg_weight
        self.mode = mode
        self.loss_weight = loss_weight

    def correlation(self, target: torch.Tensor) -> torch.Tensor:
        """``T^T T / N`` averaged over processes, (D, D), no gradient."""
        with torch.no_grad():
            corr = target.T @ target / target.shape[0]
            dist.all_reduce(corr, op='mean')
        return corr

    def forward(self, pred: torch.Tensor,
                target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            pred (Tensor): (B, L, D) predictions (or (N, D) rows in 'dense'
                mode).
            target (Tensor): Targets of the same shape (already normalised).
        """
        if pred.shape != target.shape:
            raise ValueError(f'pred {tuple(pred.shape)} and target '
                             f'{tuple(target.shape)} differ in shape')
        if self.mode == 'both':
            loss = self.unigrad(pred, target, 'dense') + \
                self.unigrad(pred, target, 'global')
        else:
            loss = self.unigrad(pred, target, self.mode)
        return self.loss_weight * loss

    def unigrad(self, pred: torch.Tensor, target: torch.Tensor,
                mode: str) -> torch.Tensor:
        """``(pos + neg_weight * neg) / D`` of the rows of one form."""
        with torch.autocast(device_type=pred.device.type, enabled=False):
            pred = pred.float()
            target = target.detach().float()
            if mode == 'global':
                if pred.dim() != 3:
                    raise ValueError('the global UniGrad form needs (B, L, D) '
                                     'token maps')
                pred, target = pred.mean(dim=1), target.mean(dim=1)
            pred = pred.reshape(-1, pred.shape[-1])
            target = target.reshape(-1, target.shape[-1])
            pos = (pred - target).pow(2).sum(dim=-1).mean()
            corr = self.correlation(target)
            neg = ((pred @ corr) * pred).sum(dim=-1).mean()
            return (pos + self.neg_weight * neg) / pred.shape[-1]
