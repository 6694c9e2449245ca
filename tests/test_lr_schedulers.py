"""mmmim's lr schedulers against the references' rules at every iteration:
LinearWarmupLR (chained with mmengine's cosine, per layer-decay group,
across a resume) and LayerDecayCosineAnnealingLR (the floor scaled per
group)."""
import math

import numpy as np
import pytest
import torch
from mmengine.optim import CosineAnnealingLR

from mmmim.engine import LayerDecayCosineAnnealingLR, LinearWarmupLR
from mmpretrain.registry import PARAM_SCHEDULERS


def optimizer(lrs=(1.0, ), scales=None):
    """One group per lr, with ``lr_scale`` as the layer-decay constructor
    sets it when ``scales`` are given."""
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in lrs]
    groups = [dict(params=[p], lr=lr) for p, lr in zip(params, lrs)]
    for group, scale in zip(groups, scales or ()):
        group['lr_scale'] = scale
    return torch.optim.SGD(groups, lr=lrs[0])


def run(opt, schedulers, steps):
    """The lr of each group at every step, as mmengine's Runner steps
    schedulers (after each optimiser step)."""
    lrs = []
    for _ in range(steps):
        lrs.append([g['lr'] for g in opt.param_groups])
        opt.step()
        for s in schedulers:
            s.step()
    return np.array(lrs)


def build(cfg, opt, epoch_length):
    return PARAM_SCHEDULERS.build(
        cfg, default_args=dict(optimizer=opt, epoch_length=epoch_length))


def mae_lr(epoch, lr, warmup, epochs, min_lr=0.):
    """mae util/lr_sched.py:9-16 (HPM, SIM and iTPN-pixel copy it)."""
    if epoch < warmup:
        return lr * epoch / warmup
    return min_lr + (lr - min_lr) * 0.5 * (1. + math.cos(
        math.pi * (epoch - warmup) / (epochs - warmup)))


def test_mae_warmup_and_cosine_at_every_iteration():
    """A 2-epoch warm-up from 0 and a cosine to 1e-6 over 6 epochs of 5
    iterations, converted to iterations as the configs do."""
    opt = optimizer()
    schedulers = [
        build(dict(type='LinearWarmupLR', start_factor=0., by_epoch=True,
                   begin=0, end=2, convert_to_iter_based=True), opt, 5),
        build(dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True,
                   begin=2, convert_to_iter_based=True, end=6), opt, 5)]
    got = run(opt, schedulers, 30)[:, 0]
    expected = [mae_lr(i / 5, 1.0, 2, 6, 1e-6) for i in range(30)]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    assert got[0] == 0. and got[10] == 1.0  # the lr at the first step after


def test_mmengine_linear_lr_is_one_step_early():
    """What LinearWarmupLR is for: mmengine's LinearLR reaches the lr at the
    last warm-up step and cannot start at 0."""
    opt = optimizer()
    got = run(opt, [build(dict(type='LinearLR', start_factor=1e-4,
                               by_epoch=False, begin=0, end=4), opt, 1)], 5)
    assert got[3, 0] == pytest.approx(1.0)  # the reference: 0.75
    with pytest.raises(ZeroDivisionError):
        opt = optimizer()
        run(opt, [build(dict(type='LinearLR', start_factor=0.,
                             by_epoch=False, begin=0, end=4), opt, 1)], 3)


def test_timm_warmup_from_a_start_value():
    """timm's ``warmup_lr_init`` (SimMIM): init + t (lr - init) / T."""
    init, lr, steps = 5e-7, 1e-4, 8
    opt = optimizer((lr, ))
    got = run(opt, [build(dict(type='LinearWarmupLR', start_factor=init / lr,
                               by_epoch=False, begin=0, end=steps), opt, 1)],
              steps + 2)[:, 0]
    expected = [init + t * (lr - init) / steps for t in range(steps)]
    np.testing.assert_allclose(got[:steps], expected, rtol=1e-12)
    assert list(got[steps:]) == [lr, lr]


def test_linspace_warmup_is_beit_cosine_scheduler():
    """itpn_clip/utils/utils.py:446-458: np.linspace(0, lr, W), then the
    cosine over the remaining iterations."""
    lr, final, warmup, total = 1.5e-3, 1e-5, 6, 20
    opt = optimizer((lr, ))
    schedulers = [
        build(dict(type='LinearWarmupLR', start_factor=0., linspace=True,
                   by_epoch=False, begin=0, end=warmup), opt, 1),
        build(dict(type='CosineAnnealingLR', eta_min=final, by_epoch=False,
                   begin=warmup, end=total), opt, 1)]
    got = run(opt, schedulers, total)[:, 0]
    cosine = [final + 0.5 * (lr - final) *
              (1 + math.cos(math.pi * i / (total - warmup)))
              for i in range(total - warmup)]
    expected = np.concatenate([np.linspace(0, lr, warmup), cosine])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-18)


def test_every_layer_decay_group_scales_alike():
    lrs = (1e-3, 1e-3 * 0.65, 1e-3 * 0.65**2)
    opt = optimizer(lrs)
    got = run(opt, [build(dict(type='LinearWarmupLR', by_epoch=False,
                               begin=0, end=4), opt, 1)], 6)
    for t in range(6):
        np.testing.assert_allclose(got[t], np.array(lrs) * min(t / 4, 1),
                                   rtol=1e-12)


def test_resume_continues_the_warmup():
    """A scheduler restored from its state dict (as a resumed Runner does)
    goes on exactly where the interrupted one was."""
    cfg = dict(type='LinearWarmupLR', by_epoch=False, begin=2, end=7)

    def fresh():
        opt = optimizer((0.5, ))
        warmup = build(cfg, opt, 1)
        cosine = CosineAnnealingLR(opt, eta_min=0., begin=7, end=12,
                                   by_epoch=False)
        return opt, [warmup, cosine]

    opt, schedulers = fresh()
    full = run(opt, schedulers, 12)[:, 0]
    opt, schedulers = fresh()
    head = run(opt, schedulers, 4)[:, 0]
    states = [s.state_dict() for s in schedulers]
    optim_state = opt.state_dict()
    opt2, resumed = fresh()
    opt2.load_state_dict(optim_state)
    for s, state in zip(resumed, states):
        s.load_state_dict(state)
    tail = run(opt2, resumed, 8)[:, 0]
    np.testing.assert_allclose(np.concatenate([head, tail]), full,
                               rtol=1e-12)
    # steps 0-1 before the warm-up's begin keep the initial lr
    assert list(full[:3]) == [0.5, 0.5, 0.]


def test_bad_arguments_are_refused():
    opt = optimizer()
    with pytest.raises(ValueError, match='finite `end`'):
        LinearWarmupLR(opt, begin=0)
    with pytest.raises(ValueError, match='end_factor'):
        LinearWarmupLR(opt, end=4, end_factor=0.5)
    with pytest.raises(ValueError, match='at least 2 steps'):
        LinearWarmupLR(opt, end=1, linspace=True)


def test_layer_decay_cosine_floor_scales_with_each_group():
    """mae util/lr_sched.py:14-18: one lr, min_lr + (lr - min_lr) cos, times
    each group's lr_scale; a warm-up first, as the fine-tuning configs."""
    lr, min_lr, scales = 2e-3, 1e-6, (1.0, 0.65, 0.65**13)
    opt = optimizer([lr * s for s in scales], scales)
    schedulers = [
        build(dict(type='LinearWarmupLR', by_epoch=True, begin=0, end=1,
                   convert_to_iter_based=True), opt, 4),
        build(dict(type='LayerDecayCosineAnnealingLR', eta_min=min_lr,
                   by_epoch=True, begin=1, end=5, convert_to_iter_based=True),
              opt, 4)]
    got = run(opt, schedulers, 20)
    expected = np.array([[mae_lr(i / 4, lr, 1, 5, min_lr) * s for s in scales]
                         for i in range(20)])
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    # mmengine's absolute floor takes the lowest group to min_lr instead
    opt = optimizer([lr * s for s in scales], scales)
    plain = run(opt, [build(dict(type='CosineAnnealingLR', eta_min=min_lr,
                                 by_epoch=False, begin=0, end=16), opt, 1)],
                16)
    assert plain[-1, 2] > 10 * expected[-1, 2]


def test_layer_decay_cosine_keeps_an_auto_scaled_floor_absolute():
    """After ``--auto-scale-lr`` (every group's lr x 2 before the schedulers
    are built) the floor stays min_lr x lr_scale, as the reference's
    absolute ``--min_lr`` does."""
    lr, min_lr, scales, steps = 2e-3, 1e-6, (1.0, 0.5), 10
    opt = optimizer([2 * lr * s for s in scales], scales)
    got = run(opt, [build(dict(type='LayerDecayCosineAnnealingLR',
                               eta_min=min_lr, by_epoch=False, begin=0,
                               end=steps), opt, 1)], steps)
    cos = [(1 + math.cos(math.pi * t / steps)) / 2 for t in range(steps)]
    expected = [[min_lr * s + (2 * lr - min_lr) * s * c for s in scales]
                for c in cos]
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_layer_decay_cosine_needs_consistent_groups():
    opt = optimizer((1e-3, 1e-3), (1.0, 0.5))  # lr not scaled by lr_scale
    with pytest.raises(ValueError, match='lr / lr_scale differ'):
        LayerDecayCosineAnnealingLR(opt, eta_min=1e-6, end=10)
    with pytest.raises(ValueError, match='takes eta_min'):
        LayerDecayCosineAnnealingLR(optimizer(), eta_min_ratio=0.1, end=10)
