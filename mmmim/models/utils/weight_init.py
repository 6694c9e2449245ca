"""The references' ``_init_weights``: Linear weights from one initialiser with
zero biases, LayerNorms at weight 1 and bias 0."""
from typing import Callable

import torch
import torch.nn as nn
from mmengine.model.weight_init import trunc_normal_


def init_linear_layernorm(
        module: nn.Module,
        weight_init: Callable[[torch.Tensor], object] = nn.init.xavier_uniform_
) -> None:
    """Initialise every ``nn.Linear`` and ``nn.LayerNorm`` inside ``module``.

    Args:
        module (nn.Module): Modules are visited in ``module.modules()`` order
            (the order of the random draws).
        weight_init (callable): Initialiser of the Linear weights:
            xavier-uniform (MAE, HPM, SIM; default) or :func:`trunc_normal_02_`
            (BEiT, iTPN).
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            weight_init(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm) and m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def trunc_normal_02_(tensor: torch.Tensor) -> torch.Tensor:
    """timm's ``trunc_normal_(std=.02)`` of the BEiT / iTPN references
    (mmengine keeps timm's sampler; torch's ``nn.init.trunc_normal_`` now
    draws differently)."""
    return trunc_normal_(tensor, std=.02)
