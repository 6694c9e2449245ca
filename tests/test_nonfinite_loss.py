"""Non-finite losses stop training naming the iteration and the term, or skip
the step when configured, up to a limit; under DDP every rank decides alike;
loss scaling still handles overflowing gradients."""
import itertools

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper

from mmmim.engine import ResilientRunner
from mmmim.models.selfsup.base import MIMSelfSupervisor
from mmpretrain.structures import DataSample
from .conftest import requires_fashion_mnist
from .multiprocess import run_ranks


class TwoTermModel(MIMSelfSupervisor):
    """A linear 'backbone' and two loss terms; ``bad`` makes one non-finite."""

    bad = None

    def loss(self, inputs, data_samples, **kwargs):
        feat = self.backbone(inputs.flatten(1))
        loss_rec = (feat**2).mean()
        loss_pred = feat.abs().mean() * 0.1
        if self.bad == 'nan':
            loss_pred = loss_pred * float('nan')
        elif self.bad == 'inf':
            loss_pred = loss_pred + float('inf')
        return dict(loss_rec=loss_rec, loss_pred=loss_pred)


def build(**kwargs):
    return TwoTermModel(
        backbone=torch.nn.Linear(12, 4),
        data_preprocessor=dict(type='SelfSupDataPreprocessor', mean=None,
                               std=None),
        **kwargs)


def batch():
    return dict(inputs=torch.randn(2, 3, 2, 2),
                data_samples=[DataSample(), DataSample()])


def params(model):
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize('bad', ['nan', 'inf'])
def test_nonfinite_term_raises_with_iteration_and_name(bad):
    model = build()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    MessageHub.get_current_instance().update_info('iter', 41)
    model.bad = bad
    before = params(model)
    with pytest.raises(FloatingPointError) as err:
        model.train_step(batch(), wrapper)
    assert 'iteration 42' in str(err.value)
    assert f'loss_pred={bad}' in str(err.value)
    assert 'loss_rec' not in str(err.value)
    for a, b in zip(before, params(model)):  # no update happened
        assert torch.equal(a, b)


def test_skip_mode_skips_counts_and_recovers():
    model = build(nonfinite_loss='skip')
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    model.bad = 'nan'
    before = params(model)
    log_vars = model.train_step(batch(), wrapper)
    assert float(log_vars['skipped_steps']) == 1
    for a, b in zip(before, params(model)):
        assert torch.equal(a, b)
    assert all(p.grad is None or not p.grad.abs().sum() for p in
               model.parameters())
    model.bad = None
    log_vars = model.train_step(batch(), wrapper)
    assert float(log_vars['skipped_steps']) == 1
    assert torch.isfinite(log_vars['loss'])
    assert not torch.equal(before[0], params(model)[0])


def test_bad_setting_is_rejected():
    with pytest.raises(ValueError, match='nonfinite_loss'):
        build(nonfinite_loss='ignore')


class CPUScaledOptimWrapper(OptimWrapper):
    """fp16-style dynamic loss scaling on CPU (mmengine's AmpOptimWrapper
    needs CUDA): scale the loss, let GradScaler skip overflowing steps."""

    def __init__(self, optimizer, init_scale):
        super().__init__(optimizer)
        self.scaler = torch.amp.GradScaler('cpu', init_scale=init_scale)

    def backward(self, loss, **kwargs):
        self.scaler.scale(loss).backward(**kwargs)

    def step(self, **kwargs):
        self.scaler.step(self.optimizer, **kwargs)
        self.scaler.update()


def test_loss_scaling_still_skips_overflowing_gradients():
    model = build()
    wrapper = CPUScaledOptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.1), init_scale=2.**127)
    before = params(model)
    data = batch()
    data['inputs'] = data['inputs'] * 100  # loss ~100: scaled, it overflows
    log_vars = model.train_step(data, wrapper)  # finite loss: no error
    assert torch.isfinite(log_vars['loss'])
    for a, b in zip(before, params(model)):  # inf grads: scaler skipped
        assert torch.equal(a, b)
    assert wrapper.scaler.get_scale() == 2.**126  # and backed off


# -- limits of 'skip', and what a skipped step logs ------------------------
_HUB_IDS = itertools.count()


def fresh_hub():
    """A new MessageHub, current from now on (the skip counts live there)."""
    return MessageHub.get_instance(f'nonfinite-test-{next(_HUB_IDS)}')


def test_skip_stops_after_too_many_skipped_steps_in_a_row():
    hub = fresh_hub()
    model = build(nonfinite_loss='skip', max_consecutive_skipped_steps=3,
                  max_skipped_steps=None)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    model.bad = 'nan'
    for it in range(2):
        hub.update_info('iter', it)
        model.train_step(batch(), wrapper)
    hub.update_info('iter', 2)
    with pytest.raises(FloatingPointError) as err:
        model.train_step(batch(), wrapper)
    assert str(err.value) == (
        'non-finite loss at iteration 3: loss=nan, loss_pred=nan; 3 steps '
        'skipped in a row, the limit (model.max_consecutive_skipped_steps=3): training '
        'stops')


def test_skip_stops_after_too_many_skipped_steps_in_all():
    hub = fresh_hub()
    model = build(nonfinite_loss='skip', max_consecutive_skipped_steps=2,
                  max_skipped_steps=3)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    for it, bad in enumerate(['nan', None, 'nan', None]):
        # a finite step resets the count in a row (limit 2 never reached)
        hub.update_info('iter', it)
        model.bad = bad
        log_vars = model.train_step(batch(), wrapper)
    assert float(log_vars['skipped_steps']) == 2
    assert hub.get_info('consecutive_skipped_steps') == 0
    hub.update_info('iter', 4)
    model.bad = 'inf'
    with pytest.raises(FloatingPointError, match=(
            r'non-finite loss at iteration 5: loss=inf, loss_pred=inf; 3 steps '
            r'skipped in all, the limit \(model.max_skipped_steps=3\)')):
        model.train_step(batch(), wrapper)


def test_skipped_step_logs_no_nonfinite_terms():
    fresh_hub()
    model = build(nonfinite_loss='skip')
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    model.bad = 'nan'
    log_vars = model.train_step(batch(), wrapper)
    # the total and the bad term would put NaN into the smoothed log
    assert sorted(log_vars) == ['loss_rec', 'skipped_steps']
    assert torch.isfinite(log_vars['loss_rec'])


class NaNAtIteration(Hook):
    """Makes the backbone's input NaN at one (0-based) iteration, on one rank
    or all."""

    priority = 'LOWEST'

    def __init__(self, iteration, rank=None):
        self.iteration, self.rank = iteration, rank

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter != self.iteration or self.rank not in (None,
                                                              runner.rank):
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model

        def poison(module, args):
            handle.remove()
            return (args[0] * float('nan'), ) + args[1:]

        handle = model.backbone.register_forward_pre_hook(poison)


def tiny_mae_config(work_dir, max_iters, **model):
    from .test_training_runner import TINY_MAE_CONFIG, ROOT
    cfg = Config.fromstring(TINY_MAE_CONFIG.format(root=ROOT), '.py')
    cfg.merge_from_dict(dict(train_cfg=dict(max_iters=max_iters),
                             model=model))
    cfg.default_hooks.checkpoint = None
    cfg.work_dir = str(work_dir)
    return cfg


@requires_fashion_mnist
def test_skipped_step_keeps_the_logged_loss_finite(tmp_path):
    runner = ResilientRunner.from_cfg(
        tiny_mae_config(tmp_path, 6, nonfinite_loss='skip'))
    runner.register_hook(NaNAtIteration(2))
    runner.train()
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == 5 and np.isfinite(losses).all()  # 3rd skipped
    assert runner.message_hub.get_scalar('train/skipped_steps').current() == 1


def _ddp_run(rank, work_dir, mode):
    # the opt-in compile must run under DDP too (what dynamo makes of the
    # modules is tests/test_compile.py's business: disabled here, it costs
    # nothing, but the modules are still wrapped)
    cfg = tiny_mae_config(work_dir, 4, nonfinite_loss=mode,
                          compile=dict(backend='eager', disable=True))
    cfg.launcher = 'pytorch'
    runner = ResilientRunner.from_cfg(cfg)
    runner.register_hook(NaNAtIteration(1, rank=1))
    runner.train()
    model = runner.model.module
    return dict(
        wrapper=type(runner.model).__name__,
        compiled=model.backbone._compiled_call_impl is not None,
        skipped=runner.message_hub.get_info('skipped_steps'),
        params=[p.detach().clone() for p in model.parameters()])


@requires_fashion_mnist
def test_ddp_nan_on_one_rank_stops_every_rank(tmp_path):
    outcomes = run_ranks(_ddp_run, str(tmp_path), 'raise')
    for rank, (kind, value) in enumerate(outcomes):
        assert kind == 'raised', f'rank {rank} trained on: {value}'
        assert value.startswith(
            'FloatingPointError: non-finite loss at iteration 2 on rank 1 of '
            '2: ' + ('loss=nan' if rank == 1 else
                     'finite on this rank (0)')), value


@requires_fashion_mnist
def test_ddp_nan_on_one_rank_skips_the_step_on_every_rank(tmp_path):
    outcomes = run_ranks(_ddp_run, str(tmp_path), 'skip')
    assert [kind for kind, _ in outcomes] == ['returned'] * 2, outcomes
    (_, r0), (_, r1) = outcomes
    assert r0['wrapper'] == 'MIMDistributedDataParallel'
    assert r0['compiled'] and r1['compiled']  # the opt-in compile ran
    assert r0['skipped'] == r1['skipped'] == 1
    for a, b in zip(r0['params'], r1['params']):  # still in step
        assert torch.equal(a, b)
