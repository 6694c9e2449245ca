"""mmmim's Runner against the references' own training loops.

The ``*_train`` fixtures in ``tests/data/reference/`` hold a few optimiser
steps of a reference's training code (``tools/parity/training_cases/``): its
optimiser groups, per-iteration lr, loss at every step and the weights at the
end, on fixed batches and masks. :func:`train_like_fixture` runs the method's
own config through ``ResilientRunner`` on the same batches and masks, with
only what a short CPU test needs changed: a tiny architecture, the
fixture's schedule length (warm-up and total epochs; every rule and value of
the schedule stays the config's), float32 (the reference loops ran without a
GPU, so their fp16 autocast and loss scaler were off), inputs fed already
normalised.
"""
import math

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from torch.utils.data import Dataset

from mmmim.engine import ResilientRunner
from mmpretrain.registry import DATASETS
from mmpretrain.structures import DataSample
from .test_reference_parity import (FIXTURES, ROOT, as_float32, rel_err,
                                    vit_arch)

#: steps compound rounding differences; the Runner's losses, lrs and weight
#: changes agree with the reference's to this (relative to the largest)
TOL = 1e-4


def load_training_fixture(name):
    fx = torch.load(f'{FIXTURES}/{name}_train.pt', map_location='cpu',
                    weights_only=True)
    fx['state_dict'] = as_float32(fx['state_dict'])
    fx['inputs'] = as_float32(fx['inputs'])
    return fx


@DATASETS.register_module(name='_ReferenceTrainingSamples', force=True)
class ReferenceTrainingSamples(Dataset):
    """The fixture's samples in order, each with its ``DataSample`` fields
    (the patch mask, SIM's views and crop geometry, ...)."""

    def __init__(self, inputs, fields):
        self.inputs, self.fields = inputs, fields

    def __len__(self):
        return len(self.inputs)

    def __getitem__(self, idx):
        sample = DataSample()
        for name, values in self.fields.items():
            sample.set_field(values[idx], name)
        return dict(inputs=self.inputs[idx], data_samples=sample)


class Rows:
    """Per-sample values (a tensor's rows, a list) that the Runner's config
    prints as one short line: written out in full, ``Config.pretty_text``
    (run three times by the Runner) takes seconds per tensor."""

    def __init__(self, values):
        self.values = values

    def __len__(self):
        return len(self.values)

    def __getitem__(self, idx):
        return self.values[idx]

    def __repr__(self):
        return f'Rows({len(self.values)})'


class StepLog(Hook):
    """Each iteration's loss terms and the lr of every optimiser group."""
    priority = 'LOWEST'

    def __init__(self):
        self.losses, self.lrs = [], []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.lrs.append([g['lr'] for g in
                         runner.optim_wrapper.optimizer.param_groups])

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses.append({k: v.detach().clone() for k, v in outputs.items()
                            if 'loss' in k})


def short_schedule(cfg, sched):
    """The config's schedulers over the fixture's epochs: the warm-up ends
    after ``warmup_epochs``, the main schedule starts there and runs to the
    end of training. Milestones stay the config's (a test whose short run
    needs a decay inside it sets its own schedulers)."""
    warmup, epochs = sched['warmup_epochs'], sched['epochs']
    for scheduler in cfg.param_scheduler:
        if 'milestones' in scheduler:
            continue
        if scheduler['type'] in ('LinearWarmupLR', 'LinearLR'):
            assert scheduler.get('begin', 0) == 0, scheduler
            scheduler['end'] = warmup
        else:
            scheduler['begin'] = warmup
            if 'end' in scheduler:
                scheduler['end'] = epochs
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs)


def save_initial_checkpoint(state, work_dir):
    """The reference's initial weights (mmmim names) as a checkpoint for
    ``load_from``: the Runner loads it after its own weight init."""
    path = f'{work_dir}/initial.pth'
    torch.save(dict(state_dict=state, meta=dict()), path)
    return path


def train_like_fixture(config, fx, make_tiny, work_dir, inputs,
                       fields=None, load_from=None, hooks=()):
    """A Runner for ``config`` (``make_tiny(cfg.model)`` shrinks the
    model in place) on the fixture's
    batches, starting from the checkpoint ``load_from``. Returns the runner
    (call ``train()``) and its :class:`StepLog`."""
    cfg = Config.fromfile(f'{ROOT}/configs/{config}')
    make_tiny(cfg.model)
    sched = fx['meta']['schedule']
    short_schedule(cfg, sched)
    # float32 as in the reference loops on the CPU (no autocast, no scaler)
    cfg.optim_wrapper.type = 'OptimWrapper'
    cfg.optim_wrapper.pop('loss_scale', None)
    # the fixture's images are already normalised
    cfg.model.data_preprocessor = dict(
        type=cfg.model.get('data_preprocessor', {}).get(
            'type', 'SelfSupDataPreprocessor'),
        mean=[0., 0., 0.], std=[1., 1., 1.], to_rgb=False)
    cfg.data_preprocessor = cfg.model.data_preprocessor
    cfg.train_dataloader = dict(
        batch_size=sched['batch_size'], num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='default_collate'),
        dataset=dict(type='_ReferenceTrainingSamples', inputs=Rows(inputs),
                     fields={k: Rows(v) for k, v in (fields or {}).items()}))
    # training only (the fine-tuning configs validate on ImageNet)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks', [])
                        if h['type'] != 'RepresentationEvalHook']
    cfg.work_dir = str(work_dir)
    cfg.load_from = load_from
    cfg.log_level = 'WARNING'
    runner = ResilientRunner.from_cfg(cfg)
    log = StepLog()
    runner.register_hook(log)
    for hook in hooks:
        runner.register_hook(hook)
    return runner, log


def reference_lr(step, sched):
    """MAE's ``util/lr_sched.py`` (HPM, SIM and iTPN-pixel copy it) at
    iteration ``step`` of the fixture's schedule: the lr the Runner should
    use."""
    epoch = step / sched['iters_per_epoch']
    lr, warmup, epochs = sched['lr'], sched['warmup_epochs'], sched['epochs']
    if epoch < warmup:
        return lr * epoch / warmup
    return sched['min_lr'] + (lr - sched['min_lr']) * 0.5 * (
        1 + math.cos(math.pi * (epoch - warmup) / (epochs - warmup)))


def assert_lrs_are_reference(log, fx):
    """Every step's lr, in every one of the Runner's groups (mmengine makes
    a group per parameter), is the reference's, which is
    :func:`reference_lr` (the fixture's two groups alike)."""
    ref, sched = fx['outputs']['lrs'], fx['meta']['schedule']
    steps = sched['epochs'] * sched['iters_per_epoch']
    assert len(log.lrs) == steps == len(ref)
    for step, (lrs, ref_lrs) in enumerate(zip(log.lrs, ref)):
        assert ref_lrs.tolist() == [reference_lr(step, sched)] * 2
        assert lrs == pytest.approx([float(ref_lrs[0])] * len(lrs),
                                    rel=1e-12, abs=1e-15), f'lr at {step}'


def tiny_mae(k):
    """A fixture's MAE-style model size (``k``: the reference's kwargs) in
    the config's model, in place: encoder and reconstruction decoder."""
    grid = k['img_size'] // k['patch_size']

    def make_tiny(model):
        model.backbone.update(
            arch=vit_arch(k),
            img_size=k['img_size'], patch_size=k['patch_size'])
        model.neck.update(
            num_patches=grid * grid, patch_size=k['patch_size'],
            embed_dim=k['embed_dim'],
            decoder_embed_dim=k['decoder_embed_dim'],
            decoder_depth=k['decoder_depth'],
            decoder_num_heads=k['decoder_num_heads'],
            mlp_ratio=k['mlp_ratio'])
        model.head.update(patch_size=k['patch_size'])
    return make_tiny


def assert_close(actual, expected, what, tol=TOL):
    err = rel_err(actual, expected)
    assert err <= tol, (f'{what}: max |mmmim - reference| / max |reference| '
                        f'= {err:.2e} > {tol:.0e}')


def without_key_bias(name, tensor):
    """A fused ``qkv`` bias without its key third. Adding a bias to every
    key adds the same number to each of a query's scores, which the softmax
    ignores: its gradient is rounding noise, which AdamW turns into steps of
    about the lr in any direction, in the reference as in mmmim."""
    if name.endswith('qkv.bias'):
        q, _, v = tensor.chunk(3)
        return torch.cat([q, v])
    return tensor


def assert_weights_moved_alike(model, initial, final, skip=()):
    """Every parameter's change over the run (``final - initial``, both
    under mmmim's names) equals the reference's, relative to the largest
    change of that parameter (key biases aside: :func:`without_key_bias`);
    parameters that do not train stay as they were. Returns the number of
    parameters compared."""
    state = model.state_dict()
    checked = 0
    for name, start in initial.items():
        if name in skip:
            continue
        moved = without_key_bias(name, state[name].float() - start)
        ref_moved = without_key_bias(name, final[name] - start)
        if not ref_moved.any():
            assert not moved.any(), f'{name} moved; in the reference it stays'
            continue
        assert_close(moved, ref_moved, f'{name} change over the run')
        checked += 1
    return checked


def groups_by_name(runner):
    """The Runner's optimiser groups as {parameter name: (wd, lr scale)}."""
    model = runner.model
    names = {id(p): n for n, p in model.named_parameters()}
    base_wd = runner.optim_wrapper.optimizer.defaults['weight_decay']
    out = {}
    for g in runner.optim_wrapper.optimizer.param_groups:
        for p in g['params']:
            out[names[id(p)]] = (g.get('weight_decay', base_wd),
                                 g.get('lr_mult', 1.0))
    return out
