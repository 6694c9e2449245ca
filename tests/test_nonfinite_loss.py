"""Non-finite losses stop training naming the iteration and the term, or skip
the step when configured; loss scaling still handles overflowing gradients."""
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper

from mmmim.models.selfsup.base import MIMSelfSupervisor
from mmpretrain.structures import DataSample


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
