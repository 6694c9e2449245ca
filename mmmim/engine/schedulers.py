"""The references' lr rules that mmengine's schedulers do not compute: the
linear warm-up, and the cosine floor under layer decay."""
import math

from mmengine.optim import CosineAnnealingLR, LinearLR

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
        t = self.last_step
        if t >= self.warmup_steps:
            return list(self.base_values)
        if self.linspace:
            # numpy's arithmetic, to the last bit: t x step + start
            return [t * ((base - base * self.start_factor) /
                         self.warmup_steps) + base * self.start_factor
                    for base in self.base_values]
        factor = self.start_factor + (1. - self.start_factor) * (
            t / self.warmup_steps)
        return [base * factor for base in self.base_values]


@PARAM_SCHEDULERS.register_module()
class LayerDecayCosineAnnealingLR(CosineAnnealingLR):
    """Cosine annealing whose floor is scaled like the lr: group ``g`` goes
    from its own lr to ``eta_min x lr_scale_g``.

    MAE's fine-tuning ``util/lr_sched.py`` (and HPM's, SIM's, iTPN's; BEiT's
    ``cosine_scheduler`` in iTPN-CLIP likewise) computes one lr,
    ``min_lr + (lr - min_lr) x cos``, and multiplies it by each group's
    layer-decay ``lr_scale``. ``CosineAnnealingLR(eta_min=...)`` takes every
    group to the same absolute floor, so the lower layers, whose lr is
    scaled far below ``eta_min`` (0.65^13 = 0.004 of the top's in ViT-B),
    end at ``eta_min`` instead (250 times theirs).

    The groups' lrs at construction (after any ``--auto-scale-lr``) are
    ``lr x lr_scale`` for one peak ``lr`` (the layer-decay constructor's
    groups; a group without ``lr_scale`` has 1), so this is
    ``CosineAnnealingLR`` with ``eta_min_ratio = eta_min / lr``.
    """

    def __init__(self, optimizer, eta_min: float = 0., **kwargs):
        if 'eta_min_ratio' in kwargs:
            raise ValueError('LayerDecayCosineAnnealingLR takes eta_min')
        peaks = [g.get('initial_lr', g['lr']) / g.get('lr_scale', 1.)
                 for g in optimizer.param_groups]
        if not all(math.isclose(p, peaks[0], rel_tol=1e-6) for p in peaks):
            raise ValueError(
                'LayerDecayCosineAnnealingLR: the groups\' lr / lr_scale '
                f'differ ({min(peaks):.4g} to {max(peaks):.4g}); each group '
                "needs lr = peak lr x its 'lr_scale'")
        ratio = eta_min / peaks[0] if peaks[0] else 0.
        super().__init__(optimizer, eta_min_ratio=ratio, **kwargs)
