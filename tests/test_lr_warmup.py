"""LinearWarmupLR: the references' warm-up rules at every iteration, chained
with mmengine's cosine, per layer-decay group, and across a resume."""
import math

import numpy as np
import pytest
import torch
from mmengine.optim import CosineAnnealingLR

from mmmim.engine import LinearWarmupLR
from mmpretrain.registry import PARAM_SCHEDULERS


def optimizer(lrs=(1.0, )):
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in lrs]
    return torch.optim.SGD([dict(params=[p], lr=lr)
                            for p, lr in zip(params, lrs)], lr=lrs[0])


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
