"""The references' linear warm-up, as an mmengine lr scheduler."""
from mmengine.optim import LinearLR

from mmpretrain.registry import PARAM_SCHEDULERS


@PARAM_SCHEDULERS.register_module()
class LinearWarmupLR(LinearLR):
    """Linear warm-up from ``start_factor`` x lr to lr over ``[begin, end)``,
    reaching lr at ``end``, the first step after it, as the references do.

    At step ``t`` of the warm-up the lr is
    ``lr x (start_factor + (1 - start_factor) x (t - begin) / (end - begin))``:
    MAE's ``util/lr_sched.py`` (and HPM's, SIM's, iTPN's copies: start 0),
    timm's ``warmup_lr_init`` (SimMIM) and mmcv 1.x's ``warmup='linear'``
    all compute this. mmengine's ``LinearLR`` reaches lr one step earlier,
    at ``end - 1``, and cannot start at 0; the difference is at most
    ``lr / (end - begin)`` per step, but it is not the reference's schedule.

    The scheduler also sets the full lr at ``end`` itself, so that the next
    scheduler (cosine, multi-step), which continues from the current lr,
    starts from lr exactly. Values are computed in closed form from the
    initial lr of each group (layer-decay scales included).

    With ``linspace=True`` the warm-up is BEiT's ``cosine_scheduler``
    (iTPN-CLIP): ``np.linspace(start, lr, end - begin)``, which reaches lr at
    ``end - 1`` as ``LinearLR`` does, but may start at 0.
    """

    def __init__(self, optimizer, start_factor: float = 0., begin: int = 0,
                 end: int = None, linspace: bool = False, **kwargs):
        if end is None or end == float('inf'):
            raise ValueError('LinearWarmupLR needs a finite `end`')
        if kwargs.get('end_factor', 1.0) != 1.0:
            raise ValueError('LinearWarmupLR warms up to the full lr '
                             '(end_factor=1.0)')
        self.linspace = linspace
        self.warmup_steps = end - begin - 1 if linspace else end - begin
        if self.warmup_steps < 1:
            raise ValueError(f'LinearWarmupLR needs a warm-up of at least '
                             f'{2 if linspace else 1} steps, got '
                             f'begin={begin}, end={end}')
        # active through step `end` (inclusive), see the class docstring
        super().__init__(optimizer, start_factor=start_factor, begin=begin,
                         end=end + 1, **kwargs)

    def _get_value(self):
        progress = min(self.last_step, self.warmup_steps) / self.warmup_steps
        factor = self.start_factor + (1. - self.start_factor) * progress
        return [base * factor for base in self.base_values]
