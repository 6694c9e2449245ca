"""SIM: Siamese image modeling (Tao et al., Siamese Image Modeling for
Self-Supervised Vision Representation Learning, CVPR 2023; docs/sim.md).

The online branch encodes the masked view 1 and predicts the dense
representation of view 2 (placed in view 1's frame by the relative position
embedding); a momentum branch encodes the full view 2.

Parts, each registered in mmpretrain's ``MODELS`` (files under
``mmmim/models/``):

- backbone: ``MaskedViT`` (backbones/masked_vit.py);
- head: ``SiameseDenseHead`` with its ``SIMProjector`` and ``SIMPredictor``
  (heads/siamese_dense_head.py) and ``UniGradLoss`` (losses/unigrad.py);
- the relative position embedding: utils/relative_position.py;
- the momentum branch and its cosine schedule: here (``SIMMomentumHook``,
  mmmim/engine/hooks, sets the schedule position).

The two views and their crop records come from ``SIMTwoViews``
(mmmim/datasets/transforms/sim_views.py).
"""
import copy
import math
from typing import Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn as nn

from mmpretrain.registry import MODELS
from ..utils import to_device
from ..utils.relative_position import RelativeGeometry, relative_geometry
from .base import MIMSelfSupervisor


def cosine_momentum(base_momentum: float, progress: float) -> float:
    """``m = 1 - (1/2)(1 + cos(pi t / E))(1 - m0)``, ``progress = t / E``."""
    return 1. - .5 * (1. + math.cos(math.pi * progress)) * (1. - base_momentum)


class SIMMomentumBranch(nn.Module):
    """EMA copy of the online encoder (patch embed, cls token, blocks) and
    projector; it shares the online encoder's fixed position table.

    ``mask_token`` mirrors the reference's ``mm_mask_token``: EMA-updated but
    unused, kept so that reference checkpoints and parameter counts carry
    over.
    """

    def __init__(self, backbone: nn.Module, projector: nn.Module,
                 mask_token: nn.Parameter) -> None:
        super().__init__()
        self.patch_embed = copy.deepcopy(backbone.patch_embed)
        self.cls_token = nn.Parameter(backbone.cls_token.detach().clone())
        self.pre_norm = copy.deepcopy(backbone.pre_norm)
        self.layers = copy.deepcopy(backbone.layers)
        self.projector = copy.deepcopy(projector)
        self.mask_token = nn.Parameter(mask_token.detach().clone())
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor,
                pos_embed: torch.Tensor) -> torch.Tensor:
        """Full image -> (B, 1 + L, D) projector tokens (cls first)."""
        x, _ = self.patch_embed(x)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + pos_embed
        x = self.pre_norm(x)
        for layer in self.layers:
            x = layer(x)
        return self.projector(x)


@MODELS.register_module()
class SIMPretrainer(MIMSelfSupervisor):
    """Siamese image modeling.

    ``inputs`` are the two views ``[x1, x2]`` (``SIMTwoViews``); every data
    sample carries ``crop_boxes`` ((2, 4) ``(i, j, h, w)``), ``flips`` ((2,))
    and ``img_width``, and the block-wise mask of view 1 in ``mask``.

    Components: a ``MaskedViT`` backbone (frozen patch embedding, sin-cos 'yx'
    table, no final norm, ``mask_mode='drop'``) and a ``SiameseDenseHead``.
    The momentum branch is built here from them and updated **before** each
    target pass, over parameters only (BatchNorm running statistics stay its
    own): ``theta_k = m theta_k + (1 - m) theta_q``. ``momentum`` is set each
    iteration by ``SIMMomentumHook`` from the runner's progress (cosine from
    ``base_momentum`` to 1); without the hook it stays at ``base_momentum``.

    With gradient accumulation (``optim_wrapper.accumulative_counts = k``)
    the momentum branch is updated on the first micro-step of each window of
    ``k`` iterations only, as the reference does (``update_mm =
    data_iter_step % accum_iter == 0``), so that it moves once per optimiser
    step; ``momentum_once_per_window=False`` updates it on every forward.

    Args:
        backbone (dict): ``MaskedViT`` config.
        head (dict): ``SiameseDenseHead`` config (its ``target='pixel'``
            predicts view 2's pixels instead of the momentum features).
        base_momentum (float): ``m0``. Defaults to 0.995.
        momentum_once_per_window (bool): See above. Defaults to True.
        mask_ratio (float): Ratio of the random fallback mask used when the
            pipeline gives none. Defaults to 118 / 196.
    """

    def __init__(self,
                 backbone: dict,
                 head: dict,
                 neck=None,
                 base_momentum: float = 0.995,
                 momentum_once_per_window: bool = True,
                 mask_ratio: float = 118 / 196,
                 **kwargs) -> None:
        if neck is not None:
            raise ValueError('SIM has no neck: the projector and predictor '
                             'live in SiameseDenseHead')
        super().__init__(
            backbone=backbone, head=head, mask_ratio=mask_ratio, **kwargs)
        if tuple(self.head.predictor.grid_size) != tuple(
                self.backbone.patch_resolution):
            raise ValueError(
                f'head grid_size {self.head.predictor.grid_size} != backbone '
                f'patch grid {tuple(self.backbone.patch_resolution)}')
        self.base_momentum = base_momentum
        self.momentum = base_momentum
        self.momentum_once_per_window = momentum_once_per_window
        # set by train_step for the micro-step at hand
        self._update_momentum = True
        self.momentum_branch = SIMMomentumBranch(
            self.backbone, self.head.projector, self.head.predictor.mask_token)

    def _momentum_pairs(self) -> Iterator[Tuple[nn.Parameter, nn.Parameter]]:
        """(online, momentum) parameter pairs, matched by name."""
        mb = self.momentum_branch
        pairs = [(self.backbone.patch_embed, mb.patch_embed),
                 (self.backbone.layers, mb.layers),
                 (self.head.projector, mb.projector)]
        for online, target in pairs:
            online_params = dict(online.named_parameters())
            for name, param in target.named_parameters():
                yield online_params[name], param
        yield self.backbone.cls_token, mb.cls_token
        yield self.head.predictor.mask_token, mb.mask_token

    def init_weights(self) -> None:
        """Initialise the online branch, then copy it (parameters and BN
        statistics) into the momentum branch."""
        super().init_weights()
        mb = self.momentum_branch
        mb.patch_embed.load_state_dict(self.backbone.patch_embed.state_dict())
        mb.layers.load_state_dict(self.backbone.layers.state_dict())
        mb.projector.load_state_dict(self.head.projector.state_dict())
        mb.cls_token.data.copy_(self.backbone.cls_token.data)
        mb.mask_token.data.copy_(self.head.predictor.mask_token.data)

    def schedule_momentum(self, progress: float,
                          base_momentum: Optional[float] = None) -> float:
        """Set ``momentum`` to the cosine schedule at ``progress = t / E``
        (``SIMMomentumHook`` calls it before every iteration); ``m0`` is
        ``base_momentum`` or, if None, this model's."""
        m0 = self.base_momentum if base_momentum is None else base_momentum
        self.momentum = cosine_momentum(m0, progress)
        return self.momentum

    @torch.no_grad()
    def momentum_update(self, momentum: float = None) -> None:
        """``theta_k = m theta_k + (1 - m) theta_q`` in float32, parameters
        only. (Not mmengine's ``ExponentialMovingAverage``: its ``lerp_``
        rounds differently, and it averages every parameter of one module
        while SIM pairs parts of several.)"""
        m = self.momentum if momentum is None else momentum
        online, target = zip(*((o.data.to(t.dtype), t.data)
                               for o, t in self._momentum_pairs()))
        # one fused update for all parameters, rounding as mm_update does
        # (models_sim.py:286-315): each product rounded before the sum;
        # `alpha=` would be a fused multiply-add with one rounding
        torch._foreach_mul_(target, m)
        torch._foreach_add_(target, torch._foreach_mul(online, 1 - m))

    def train_step(self, data, optim_wrapper,
                   **kwargs) -> Dict[str, torch.Tensor]:
        """``MIMSelfSupervisor.train_step`` (``kwargs``: its ``ddp_wrapper``);
        decides whether this micro-step updates the momentum branch (see the
        class doc)."""
        # mmengine counts the micro-steps (backward calls) of the run in
        # ``_inner_count``; a window starts where it is a multiple of k
        counts = getattr(optim_wrapper, '_accumulative_counts', 1)
        done = getattr(optim_wrapper, '_inner_count', 0)
        self._update_momentum = (not self.momentum_once_per_window
                                 or done % counts == 0)
        try:
            return super().train_step(data, optim_wrapper, **kwargs)
        finally:
            self._update_momentum = True

    def get_geometry(self, data_samples: List,
                     device: torch.device) -> RelativeGeometry:
        """View 2 relative to view 1 from the samples' crop records."""
        keys = ('crop_boxes', 'flips', 'img_width')
        if not data_samples or not all(
                all(k in s for k in keys) for s in data_samples):
            raise KeyError(
                'SIM needs crop_boxes, flips and img_width in every data '
                'sample: use SIMTwoViews and PackInputs(algorithm_keys=['
                "'mask', 'crop_boxes', 'flips', 'img_width'])")
        # built in host memory, copied without making the host wait
        boxes = to_device(torch.stack([
            torch.as_tensor(s.crop_boxes, dtype=torch.float64)
            for s in data_samples
        ]), device)
        flips = to_device(torch.stack([torch.as_tensor(s.flips).bool()
                                       for s in data_samples]), device)
        width = to_device(torch.tensor([float(s.img_width)
                                        for s in data_samples],
                                       dtype=torch.float64), device)
        return relative_geometry(boxes[:, 0], boxes[:, 1], flips[:, 0],
                                 flips[:, 1], width)

    def predict_view2(self, x1: torch.Tensor, mask: torch.Tensor,
                      geometry: RelativeGeometry,
                      num_masked: Optional[int] = None) -> torch.Tensor:
        """Online branch: (B, L, D) predictions of view 2's patches."""
        latent, _ = self.backbone(x1, mask, num_masked)
        latent = self.head.project(latent)
        return self.head.predict(latent, mask, geometry)

    @torch.no_grad()
    def target_view2(self, x2: torch.Tensor) -> torch.Tensor:
        """Momentum branch: (B, L, D) projector outputs of view 2's patches
        (before the target LayerNorm)."""
        return self.momentum_branch(x2, self.backbone.pos_embed)[:, 1:]

    def loss(self, inputs: List[torch.Tensor], data_samples: List,
             **kwargs) -> Dict[str, torch.Tensor]:
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError('SIM expects two views [x1, x2] (SIMTwoViews)')
        x1, x2 = inputs
        mask, num_masked = self.get_mask_and_count(x1, data_samples)
        geometry = self.get_geometry(data_samples, x1.device)
        pred = self.predict_view2(x1, mask, geometry, num_masked)
        if self.head.target == 'pixel':  # ablation: no momentum branch used
            target = self.head.pixel_target(x2)
        else:
            # the EMA step comes before the target pass, as in the reference
            if self._update_momentum:
                self.momentum_update()
            target = self.target_view2(x2)
        loss = self.head.loss(pred, target)
        return dict(loss=loss,
                    momentum=torch.full((), self.momentum, device=x1.device))
