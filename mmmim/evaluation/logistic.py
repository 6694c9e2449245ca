"""Few-shot evaluation with L2-regularised multinomial logistic regression.

SIM's 1 % ImageNet protocol (Siamese-Image-Modeling main_logistic.py,
following MSN's logistic_eval.py) fits cyanure's ``MultiClassifier(loss=
'multiclass-logistic', penalty='l2', fit_intercept=False)`` on frozen
features. The problem it solves is

    min_W  (1/n) sum_i CE(x_i W, y_i) + (lambda / 2) ||W||_F^2,

with ``lambda = lambd / n`` (main_logistic.py:182) on features whose rows were
centred and l2-normalised (``cyanure.preprocess(normalize=True,
columns=False, centering=True)``, main_logistic.py:178 and 210). The
objective is smooth and strictly convex, so its minimiser is unique; here it
is found with full-batch L-BFGS in float64 (to a much smaller gradient than
cyanure's default 1e-3 relative duality gap), so no compiled solver is
needed.
"""
from typing import Optional

import torch
import torch.nn.functional as F


def center_and_normalize_rows(feats: torch.Tensor) -> torch.Tensor:
    """Subtract each row's mean over its features, then l2-normalise it
    (cyanure's ``preprocess(centering=True, normalize=True,
    columns=False)``)."""
    feats = feats - feats.mean(dim=1, keepdim=True)
    return F.normalize(feats, dim=1)


def logistic_objective(weight: torch.Tensor, feats: torch.Tensor,
                       labels: torch.Tensor, lambd: float) -> torch.Tensor:
    """``(1/n) sum CE(x W, y) + (lambd / 2) ||W||^2`` for W of (D, C)."""
    return F.cross_entropy(feats @ weight, labels) + \
        0.5 * lambd * weight.pow(2).sum()


def fit_logistic_regression(feats: torch.Tensor,
                            labels: torch.Tensor,
                            lambd: float,
                            num_classes: Optional[int] = None,
                            max_iter: int = 1000,
                            grad_tol: float = 1e-7) -> torch.Tensor:
    """Minimise :func:`logistic_objective` (no intercept); returns W (D, C).

    Args:
        feats (Tensor): (n, D) training features (already preprocessed).
        labels (Tensor): (n,) integer labels.
        lambd (float): the l2 weight ``lambda`` of the objective (the
            reference passes ``lambd / n`` here).
        num_classes (int, optional): Defaults to ``max label + 1``.
        max_iter (int): L-BFGS iterations at most.
        grad_tol (float): stop when the gradient's largest entry is below.
    """
    if lambd <= 0:
        raise ValueError(f'lambd must be > 0, got {lambd}')
    x = feats.double()
    y = labels.long().to(x.device)
    if num_classes is None:
        num_classes = int(y.max()) + 1
    weight = torch.zeros(x.shape[1], num_classes, dtype=torch.float64,
                         device=x.device, requires_grad=True)
    optim = torch.optim.LBFGS([weight], lr=1, max_iter=max_iter,
                              tolerance_grad=grad_tol,
                              tolerance_change=1e-12, history_size=20,
                              line_search_fn='strong_wolfe')

    def closure():
        optim.zero_grad()
        loss = logistic_objective(weight, x, y, lambd)
        loss.backward()
        return loss

    with torch.enable_grad():
        optim.step(closure)
    return weight.detach()


def logistic_regression_accuracy(train_feats: torch.Tensor,
                                 train_labels: torch.Tensor,
                                 test_feats: torch.Tensor,
                                 test_labels: torch.Tensor,
                                 lambd: float = 0.1,
                                 scale_by_num_samples: bool = True,
                                 preprocess: bool = True,
                                 num_classes: Optional[int] = None,
                                 **fit_kwargs) -> dict:
    """Train / test top-1 accuracy (%) of the logistic-regression probe.

    Args:
        train_feats, train_labels, test_feats, test_labels: frozen features
            (n, D) / (m, D) and their labels.
        lambd (float): the reference's ``--lambd`` (SIM: 0.1,
            configs/few-shot/dist_fewshot_sim_base.sh).
        scale_by_num_samples (bool): use ``lambd / n`` as the l2 weight, as
            the reference does. Defaults to True.
        preprocess (bool): centre and l2-normalise every row of both splits.
        num_classes (int, optional): Defaults to ``max label + 1``.
        fit_kwargs: passed to :func:`fit_logistic_regression`.

    Returns:
        dict: ``train_top1``, ``test_top1`` (percent), ``lambda`` used.
    """
    if preprocess:
        train_feats = center_and_normalize_rows(train_feats.double())
        test_feats = center_and_normalize_rows(test_feats.double())
    if num_classes is None:
        num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    weight_decay = lambd / len(train_feats) if scale_by_num_samples \
        else lambd
    weight = fit_logistic_regression(train_feats, train_labels, weight_decay,
                                     num_classes=num_classes, **fit_kwargs)

    def top1(x, y):
        pred = (x.double().to(weight.device) @ weight).argmax(dim=1).cpu()
        return 100.0 * float((pred == y.long().cpu()).double().mean())

    return dict(train_top1=top1(train_feats, train_labels),
                test_top1=top1(test_feats, test_labels),
                **{'lambda': weight_decay})
