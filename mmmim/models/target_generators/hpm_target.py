"""HPM's EMA teacher and its easy-to-hard patch mask (Wang et al., Hard
Patches Mining for Masked Image Modeling, CVPR 2023; docs/hpm.md)."""
import copy
import warnings
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.logging import MessageHub
from mmengine.model import BaseModule

from mmpretrain.registry import MODELS
from ..utils import CheckedLoadingMixin


def num_hard_patches(num_masked: int, position: float, total: float,
                     hard_ratio: float = 0.5) -> int:
    """K = int(M * (pos + 1) / total * hard_ratio), as the reference computes it.

    The reference evaluates ``keep_ratio = float((e + 1) / E) * 0.5`` and then
    ``int(M * keep_ratio)``; the same order of float operations is kept so
    that the integer boundaries match (E=800, M=147: e=0 -> 0, 399 -> 36,
    799 -> 73).
    """
    keep_ratio = float((position + 1) / total) * hard_ratio
    return max(0, min(num_masked, int(num_masked * keep_ratio)))


def hard_patch_mask(scores: torch.Tensor,
                    num_masked: int,
                    num_hard: int,
                    generator: Optional[torch.Generator] = None,
                    noise: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mask the ``num_hard`` highest-scored patches plus random others.

    Vectorised over the batch: the hard patches get a priority above every
    uniform random draw in [0, 1), then the ``num_masked`` highest priorities
    are masked, so the other ``num_masked - num_hard`` masked patches are
    uniform among the remaining ones.

    Args:
        scores (Tensor): (B, L) predicted losses (higher = harder).
        num_masked (int): M, masked patches per image.
        num_hard (int): K, hard patches per image (0 = plain random masking).
        generator (torch.Generator, optional): For the random part.
        noise (Tensor, optional): (B, L) priorities in [0, 1) to use instead
            of a uniform draw (the random part masks the highest ones).

    Returns:
        Tensor: (B, L) bool, 1 = masked.
    """
    B, L = scores.shape
    if noise is None:
        priority = torch.rand(B, L, device=scores.device,
                              generator=generator)
    else:
        priority = noise.to(scores.device, torch.float32).clone()
    if num_hard > 0:
        hard = scores.topk(num_hard, dim=1).indices
        priority.scatter_(1, hard, 2.0)
    masked = priority.topk(num_masked, dim=1).indices
    mask = torch.zeros(B, L, dtype=torch.bool, device=scores.device)
    return mask.scatter_(1, masked, True)


@MODELS.register_module()
class HPMTarget(CheckedLoadingMixin, BaseModule):
    """EMA teacher of the whole HPM student and its hard-patch mask.

    The algorithm hands over its parts with :meth:`init_teacher` (deep
    copies under ``self.teacher``, so the teacher is in every state dict and
    checkpoint and resumes exactly), re-syncs them after its own
    initialisation with :meth:`copy_from`, and calls :meth:`update` after every
    optimiser step (``HPMTeacherHook``). The teacher never requires grad and
    always runs in eval mode.

    Each iteration :meth:`forward` runs the teacher's encoder on the fully
    visible image and its loss predictor on the decoder-embedded tokens
    (not the reconstruction decoder), and :meth:`generate_mask` turns the
    predicted losses into the easy-to-hard mask.

    The schedule position comes from the runner through mmengine's message
    hub (``epoch`` / ``max_epochs``, or ``iter`` / ``max_iters`` with
    ``by_iter=True``; both set by ``RuntimeInfoHook``).

    Args:
        mask_ratio (float): r; M = L - int(L (1 - r)) patches are masked.
        hard_ratio (float): Fraction of M that is hard at the end of the
            ramp. Defaults to 0.5.
        guide (bool): Ramp K up over training (the reference); otherwise K is
            always ``int(M * hard_ratio)``.
        by_iter (bool): Ramp K and the momentum per iteration (position =
            iteration, total = max_iters; ``momentum_warmup`` in iterations)
            instead of per epoch (the reference).
        base_momentum (float): tau at position 0. Defaults to 0.999.
        final_momentum (float): tau after the warm-up. Defaults to 0.9999.
        momentum_warmup (float): Length of the linear tau ramp, in epochs (or
            iterations with ``by_iter``). Defaults to 100.
        predictor (str): Whose loss predictor ranks the patches: ``'teacher'``
            (the EMA model, the reference) or ``'student'`` (the model being
            trained, run without gradient on the full image; the paper's
            ablation).
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 mask_ratio: float = 0.75,
                 hard_ratio: float = 0.5,
                 guide: bool = True,
                 by_iter: bool = False,
                 base_momentum: float = 0.999,
                 final_momentum: float = 0.9999,
                 momentum_warmup: float = 100,
                 predictor: str = 'teacher',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not 0 < mask_ratio < 1:
            raise ValueError(f'mask_ratio must be in (0, 1), got {mask_ratio}')
        self.mask_ratio = mask_ratio
        self.hard_ratio = hard_ratio
        self.guide = guide
        self.by_iter = by_iter
        self.base_momentum = base_momentum
        self.final_momentum = final_momentum
        self.momentum_warmup = momentum_warmup
        if predictor not in ('teacher', 'student'):
            raise ValueError("predictor must be 'teacher' or 'student', got "
                             f'{predictor!r}')
        self.predictor = predictor
        self.teacher = nn.ModuleDict()
        self._warned_no_runner = False

    # ------------------------------------------------------------ teacher
    def init_teacher(self, student: Dict[str, nn.Module]) -> None:
        """Deep-copy the student's parts (``backbone``, ``neck``,
        ``loss_predictor``) into the frozen teacher."""
        for name, module in student.items():
            teacher = copy.deepcopy(module)
            teacher.requires_grad_(False)
            self.teacher[name] = teacher
        self.teacher.eval()

    @torch.no_grad()
    def copy_from(self, student: Dict[str, nn.Module]) -> None:
        """Set the teacher to the student's current state (after init)."""
        for name, module in student.items():
            self.teacher[name].load_state_dict(module.state_dict())

    def momentum(self, position: Optional[float] = None) -> float:
        """tau = base + (pos / warmup)(final - base) for pos < warmup, else
        final; ``position`` defaults to the runner's (see class doc)."""
        if position is None:
            # outside a runner the schedule starts at 0
            position = self.progress()[0] or 0
        if position >= self.momentum_warmup:
            return self.final_momentum
        return self.base_momentum + (position / self.momentum_warmup) * (
            self.final_momentum - self.base_momentum)

    @torch.no_grad()
    def update(self, student: Dict[str, nn.Module],
               momentum: Optional[float] = None) -> float:
        """ema = tau * ema + (1 - tau) * theta over each part's state dict
        (buffers too, as the reference's EMA model; mmengine's
        ``ExponentialMovingAverage`` rounds differently with ``lerp_`` and
        averages parameters only by default).

        Returns:
            float: the tau used.
        """
        tau = self.momentum() if momentum is None else momentum
        emas, values = [], []
        for name, module in student.items():
            src = module.state_dict()
            for key, ema in self.teacher[name].state_dict().items():
                value = src[key].detach()
                if ema.is_floating_point():
                    emas.append(ema)
                    values.append(value.to(ema.dtype))
                else:
                    ema.copy_(value)
        # one fused update for all tensors, rounding as timm's ModelEma does
        # (ema * tau + (1 - tau) * value: each product rounded before the
        # sum; `alpha=` would be a fused multiply-add with one rounding)
        if emas:
            torch._foreach_mul_(emas, tau)
            torch._foreach_add_(emas, torch._foreach_mul(values, 1 - tau))
        return tau

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # no dropout / drop-path in the teacher
        return self

    # ------------------------------------------------------------ schedule
    def progress(self) -> Tuple[Optional[float], Optional[float]]:
        """(position, total) from the runner's message hub, or (None, None)
        outside a runner."""
        hub = MessageHub.get_current_instance()
        if self.by_iter:
            return hub.get_info('iter'), hub.get_info('max_iters')
        return hub.get_info('epoch'), hub.get_info('max_epochs')

    def num_masked(self, num_patches: int) -> int:
        return num_patches - int(num_patches * (1 - self.mask_ratio))

    def num_hard(self, num_patches: int,
                 position: Optional[float] = None,
                 total: Optional[float] = None) -> int:
        """K for the given (or the runner's) position in the schedule.

        Outside a runner (no position known) K is the end-of-ramp value
        ``int(M * hard_ratio)``.
        """
        M = self.num_masked(num_patches)
        if not self.guide:
            return int(M * self.hard_ratio)
        if position is None or total is None:
            position, total = self.progress()
        if position is None or not total:
            if not self._warned_no_runner:
                warnings.warn('HPMTarget: no schedule position from a runner; '
                              'using the end-of-ramp number of hard patches')
                self._warned_no_runner = True
            return int(M * self.hard_ratio)
        return num_hard_patches(M, position, total, self.hard_ratio)

    # ------------------------------------------------------------ forward
    @torch.no_grad()
    def forward(self, inputs: torch.Tensor,
                parts: Optional[Dict[str, nn.Module]] = None
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Run the teacher (or the given ``parts``: the student's, for
        ``predictor='student'``) on the fully visible image.

        Returns:
            tuple: predicted losses (B, L) and the encoder's patch tokens
            (B, L, C) (the feature target option).
        """
        parts = self.teacher if parts is None else parts
        if 'backbone' not in parts:
            raise RuntimeError('HPMTarget.init_teacher() was never called')
        backbone = parts['backbone']
        h, w = backbone.patch_resolution
        visible = torch.zeros(inputs.shape[0], h * w, dtype=torch.bool,
                              device=inputs.device)
        latent, ids_restore = backbone(inputs, visible, num_masked=0)
        tokens = parts['neck'].embed_tokens(latent, ids_restore)
        scores = parts['loss_predictor'](tokens)
        return scores, latent[:, 1:]

    @torch.no_grad()
    def generate_mask(self,
                      scores: torch.Tensor,
                      position: Optional[float] = None,
                      total: Optional[float] = None,
                      generator: Optional[torch.Generator] = None,
                      noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Easy-to-hard mask from the teacher's predicted losses: (B, L) bool.

        M = L - int(L (1 - r)) masked per image, of which the K
        highest-predicted are always masked and the rest are random (the
        highest of ``noise`` when given, see :func:`hard_patch_mask`).
        """
        L = scores.shape[1]
        return hard_patch_mask(scores, self.num_masked(L),
                               self.num_hard(L, position, total), generator,
                               noise)
