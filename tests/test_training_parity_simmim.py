"""SimMIM's ViT config trained by mmmim's Runner against microsoft/SimMIM's
own training loop (``simmim_train`` fixture), twice: under the schedule of
``build_scheduler`` (warm-up and a x0.1 milestone inside the run), for the
lr of every step, and at a constant lr, for the optimiser groups, AdamW, the
gradient clipping (it acts at every step), the loss at every step and the
weights at the end."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook

from mmmim.converters import SIMMIM_KEYMAP
from .test_reference_parity import ROOT, vit_arch
from .training_parity import (assert_close, groups_by_name,
                              load_training_fixture, save_initial_checkpoint,
                              train_like_fixture)

CONFIG = 'simmim/simmim-vit-base_pixel_800e.py'


def tiny_simmim(k, stride):
    """The fixture's model size in the config's model (in place); no drop
    path (the reference run had none: its draws are random)."""

    def make_tiny(model):
        model.backbone.update(
            arch=vit_arch(k),
            img_size=k['img_size'], patch_size=k['patch_size'],
            drop_path_rate=0.)
        model.neck.update(in_channels=k['embed_dim'], encoder_stride=stride)
        model.head.update(patch_size=k['patch_size'])
    return make_tiny


def config_schedulers(warmup_epochs, milestones):
    """The config's schedulers over the fixture's run: the warm-up ends
    after ``warmup_epochs`` (none for 0), the multi-step decay at the
    fixture's ``milestones``, every other value the config's."""
    schedulers = []
    for scheduler in copy.deepcopy(
            Config.fromfile(f'{ROOT}/configs/{CONFIG}').param_scheduler):
        if scheduler['type'] == 'MultiStepLR':
            scheduler['milestones'] = list(milestones)
        elif warmup_epochs:
            assert scheduler.get('begin', 0) == 0, scheduler
            scheduler['end'] = warmup_epochs
        else:
            continue
        schedulers.append(scheduler)
    return schedulers


class GradNormLog(Hook):
    """The gradient norm before clipping that the optimiser wrapper logs
    each step."""
    priority = 'LOWEST'

    def __init__(self):
        self.norms = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        # none without clipping: NaN, which no comparison passes
        scalars = runner.message_hub.log_scalars
        self.norms.append(scalars['train/grad_norm'].current()
                          if 'train/grad_norm' in scalars else float('nan'))


def train(fx, work_dir, warmup_epochs, milestones):
    k, meta = fx['meta']['kwargs'], fx['meta']
    grid = k['img_size'] // k['patch_size']
    norms = GradNormLog()
    runner, log = train_like_fixture(
        CONFIG, fx, tiny_simmim(k, meta['encoder_stride']), work_dir,
        inputs=fx['inputs']['img'],
        fields=dict(mask=fx['inputs']['mask'].view(-1, grid, grid)),
        load_from=save_initial_checkpoint(
            SIMMIM_KEYMAP.convert(fx['state_dict']), work_dir),
        hooks=[norms])
    # the Runner builds its schedulers in train(): the config's, at the
    # fixture's lengths
    runner.param_schedulers = config_schedulers(warmup_epochs, milestones)
    runner.train()
    return runner, log, norms


@pytest.fixture(scope='module')
def fx():
    return load_training_fixture('simmim')


@pytest.fixture(scope='module')
def scheduled(fx, tmp_path_factory):
    """The config's schedule: warm-up, then x0.1 at the milestone."""
    sched = fx['meta']['schedule']
    return train(fx, tmp_path_factory.mktemp('scheduled'),
                 sched['warmup_epochs'], sched['milestones'])


@pytest.fixture(scope='module')
def constant(fx, tmp_path_factory):
    """No warm-up, the milestone at the end: the lr is the config's lr."""
    sched = fx['meta']['constant_schedule']
    return train(fx, tmp_path_factory.mktemp('constant'),
                 sched['warmup_epochs'], sched['milestones'])


def assert_weights_moved_alike_except(model, initial, final, left_out):
    """Every parameter's change over the run equals the reference's,
    relative to the largest change of that parameter, except the elements
    ``left_out`` ({name: flat indices}): those whose first clipped gradient
    was below AdamW's eps in the reference, where the first step is
    ``lr g / eps``-like and so carries the rounding differences of ``g``.
    Returns the number of parameters compared."""
    state = model.state_dict()
    checked = 0
    for name, start in initial.items():
        moved = (state[name].float() - start).flatten()
        ref_moved = (final[name] - start).flatten()
        keep = torch.ones_like(moved, dtype=torch.bool)
        keep[left_out.get(name, [])] = False
        if not ref_moved.any():
            assert not moved.any(), f'{name} moved; in the reference it stays'
            continue
        assert_close(moved[keep], ref_moved[keep],
                     f'{name} change over the run')
        checked += 1
    return checked


def timm_multistep_lr(t, sched):
    """``lr_scheduler.py``'s ``MultiStepLRScheduler._get_lr`` at update
    ``t`` (timm ``warmup_lr_init``: linear from the warm-up lr, reaching the
    lr at the first step after the warm-up)."""
    its = sched['iters_per_epoch']
    warmup = sched['warmup_epochs'] * its
    if t < warmup:
        return sched['warmup_lr'] + t * (sched['lr'] -
                                         sched['warmup_lr']) / warmup
    decays = sum(t >= m * its for m in sched['milestones'])
    return sched['lr'] * sched['gamma']**decays


def single_lrs(lrs):
    """The one lr of every step (mmengine makes a group per parameter)."""
    out = []
    for step in lrs:
        assert len(set(step)) == 1, step
        out.append(step[0])
    return out


def test_reference_lr_lags_its_schedule_by_one_step(fx):
    """``train_one_epoch`` calls ``step_update(epoch * num_steps + idx)``
    after ``optimizer.step()``: step g runs with the lr computed for g - 1,
    step 0 with the warm-up lr the scheduler set at construction."""
    sched = fx['meta']['schedule']
    ref = single_lrs(fx['outputs']['schedule']['lrs'].tolist())
    assert ref == [timm_multistep_lr(max(g - 1, 0), sched)
                   for g in range(len(ref))]
    # the run crosses the warm-up and the milestone
    assert sched['warmup_lr'] < ref[3] < sched['lr'] == ref[5]
    assert ref[-1] == pytest.approx(sched['lr'] * sched['gamma'], rel=1e-12)


def test_lr_is_the_reference_schedule_without_its_lag(fx, scheduled):
    """mmmim's lr at every step g is the reference's at g + 1, warm-up and
    milestone included (the schedule without the reference's one-step
    lag); the last step's is the schedule's value there."""
    _, log, _ = scheduled
    sched = fx['meta']['schedule']
    ref = single_lrs(fx['outputs']['schedule']['lrs'].tolist())
    lrs = single_lrs(log.lrs)
    assert len(lrs) == len(ref) == sched['epochs'] * sched['iters_per_epoch']
    assert lrs[:-1] == pytest.approx(ref[1:], rel=1e-12)
    assert lrs[-1] == pytest.approx(timm_multistep_lr(len(lrs) - 1, sched),
                                    rel=1e-12)


def test_first_scheduled_steps_match_reference(fx, scheduled):
    """Step 0 runs at the warm-up lr on both sides: the losses of steps 0
    and 1 and the gradient norms agree (later steps differ by the lr)."""
    _, log, norms = scheduled
    ref = fx['outputs']['schedule']
    sched = fx['meta']['schedule']
    assert log.lrs[0][0] == ref['lrs'][0][0] == pytest.approx(
        sched['warmup_lr'], rel=1e-12)
    losses = torch.stack([s['loss'] for s in log.losses])
    assert_close(losses[:2], ref['losses'][:2], 'loss at steps 0 and 1')
    assert_close(torch.tensor(norms.norms[:2]), ref['grad_norms'][:2],
                 'gradient norm at steps 0 and 1')


def test_optimizer_matches_reference(fx, constant):
    """``build_optimizer``'s groups by name (no decay for 1-D parameters,
    biases, ``pos_embed`` and ``cls_token``; the mask token and the shared
    bias table decayed), AdamW's betas and eps, the clip norm."""
    runner, _, _ = constant
    meta = fx['meta']
    groups = groups_by_name(runner)
    for group in meta['groups']:
        for name in group['names']:
            wd, _ = groups[SIMMIM_KEYMAP.map_key(name)]
            assert wd == group['weight_decay'], name
    assert len(groups) == sum(len(g['names']) for g in meta['groups'])
    decayed = {SIMMIM_KEYMAP.map_key(n) for g in meta['groups']
               if g['weight_decay'] for n in g['names']}
    assert {'backbone.mask_token',
            'backbone.rel_pos_bias.relative_position_bias_table'} <= decayed
    assert 'backbone.cls_token' not in decayed
    optimizer = runner.optim_wrapper.optimizer
    assert type(optimizer).__name__ == 'AdamW'
    assert optimizer.defaults['betas'] == tuple(meta['betas'])
    assert optimizer.defaults['eps'] == meta['eps']
    assert optimizer.defaults['weight_decay'] == meta['weight_decay']
    assert runner.optim_wrapper.clip_grad_kwargs['max_norm'] == \
        meta['clip_grad']


def test_constant_lr_training_matches_reference(fx, constant):
    """At the config's lr throughout: the loss and the gradient norm at every
    step (the norm is above the clip norm at every step, so the clipped
    gradient is what AdamW gets) and every parameter's change over the
    run."""
    runner, log, norms = constant
    ref, meta = fx['outputs']['constant'], fx['meta']
    lrs = single_lrs(log.lrs)
    assert lrs == ref['lrs'][:, 0].tolist() == \
        [meta['schedule']['lr']] * len(lrs)
    assert all(set(step) == {'loss'} for step in log.losses)  # one term
    losses = torch.stack([s['loss'] for s in log.losses])
    assert_close(losses, ref['losses'], 'loss at every step')
    assert ref['losses'][-1] < ref['losses'][0]  # it did learn something
    assert (ref['grad_norms'] > 2 * meta['clip_grad']).all()
    assert_close(torch.tensor(norms.norms), ref['grad_norms'],
                 'gradient norm before clipping at every step')
    initial = SIMMIM_KEYMAP.convert(fx['state_dict'])
    final = SIMMIM_KEYMAP.convert(ref['final_state_dict'])
    left_out = {SIMMIM_KEYMAP.map_key(name): idx for name, idx in
                ref['first_grad_below_eps'].items()}
    # a handful of the 92k elements
    assert sum(map(len, left_out.values())) <= 20, left_out
    checked = assert_weights_moved_alike_except(runner.model, initial, final,
                                                left_out)
    assert checked == sum(p.requires_grad for p in
                          runner.model.parameters())
