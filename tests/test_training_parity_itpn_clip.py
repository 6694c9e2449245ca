"""iTPN's CLIP config trained by mmmim's Runner against eight steps of
sunsmarterjie/iTPN's own CLIP pre-training loop (``itpn_clip_train``
fixture): the same weight-decay groups (the absolute position table exempt,
the relative position tables and the mask token decayed), the lr of every
iteration (``np.linspace`` warm-up from 0, cosine to 1e-5), the constant
weight decay, both loss terms at every step, the frozen teacher's targets
and every trainable weight's change over the run.

Inputs: the reference's pipeline gave its student the image normalised with
mean = std = 0.5 and its CLIP teacher the [0, 1] image. mmmim's teacher
computes its input from the student's, with the config's ``input_mean`` /
``input_std`` (127.5, the data preprocessor's): the Runner is fed the
student's input (already normalised, as in every training-parity test)
and its teacher recovers the [0, 1] image from it. The model's own check
that the teacher's statistics equal the data preprocessor's
(``_check_teacher_input_stats``) would see the identity preprocessor of
this feed, so it is skipped while the Runner is built (:func:`run`); what it
compares is asserted against the reference's statistics instead
(:func:`test_itpn_clip_teacher_input_matches_reference`).

Drop path is 0 on both sides (the config's 0.1 draws at random).
"""
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.hooks import Hook
from mmpretrain.registry import MODELS

from mmmim.engine.schedulers import LinearWarmupLR
from mmmim.models.selfsup.itpn import iTPNCLIPPretrainer
from .test_reference_parity import ROOT, config_model, converter, itpn_arch
from .training_parity import (assert_close, assert_weights_moved_alike,
                              groups_by_name, load_training_fixture,
                              save_initial_checkpoint, train_like_fixture)

CONFIG = 'itpn/itpn-base_clip_800e.py'


def student_input(pixels):
    """The reference's ``patch_transform`` of the stored 8-bit images:
    ToTensor, Normalize(0.5, 0.5) (the generator checks this bit for
    bit)."""
    return (pixels.permute(0, 3, 1, 2).float().div(255) - 0.5) / 0.5


def tiny_itpn_clip(k, clip_file):
    """The fixture's model size in the config's model (in place), the
    teacher read from ``clip_file``; no drop path, as in the reference
    run."""
    grid = k['img_size'] // k['patch_size']

    def make_tiny(model):
        # the config's rule: the output after int(0.75 x depth) + 1 blocks
        model.early_layers = int(0.75 * k['depth']) + 1
        model.backbone.update(
            arch=itpn_arch(k), img_size=k['img_size'],
            patch_size=k['patch_size'], mlp_ratio=k['mlp_ratio'],
            layer_scale_init_value=k['init_values'],
            drop_path_rate=0.)
        model.neck.update(in_channels=k['embed_dim'], fpn_dim=k['fpn_dim'],
                          fpn_depth=k['fpn_depth'], mlp_ratio=k['mlp_ratio'])
        model.head.update(
            embed_dim=k['embed_dim'], fpn_dim=k['fpn_dim'],
            target_dim=k['teacher_dim'], num_heads=k['num_heads'],
            mlp_ratio=k['mlp_ratio'], grid_size=grid,
            layer_scale_init_value=k['init_values'])
        model.target_generator.update(checkpoint=clip_file)
    return make_tiny


class HeadOutputs(Hook):
    """Each training step's main and auxiliary predictions and the
    teacher's target, from forward hooks on the head and the teacher (the
    model logs only their summed loss)."""
    priority = 'LOWEST'

    def __init__(self):
        self.preds, self.targets = [], []

    def before_run(self, runner):
        model = runner.model
        model.head.register_forward_hook(
            lambda m, a, out: self.preds.append(
                tuple(o.detach().clone() for o in out)))
        model.target_generator.register_forward_hook(
            lambda m, a, out: self.targets.append(out.detach().clone()))

    def terms(self):
        """(main, aux) SmoothL1 of every step, as ``iTPNCLIPHead.loss``
        computes them."""
        return [tuple(F.smooth_l1_loss(p, target) for p in preds)
                for preds, target in zip(self.preds, self.targets)]


def write_teacher(fx, tmp_path):
    """The reference's tiny CLIP in OpenAI's layout, for the config's
    ``target_generator.checkpoint``."""
    path = str(tmp_path / 'tiny_clip.pth')
    torch.save({'visual.' + n: v.float()
                for n, v in fx['teacher_state_dict'].items()}, path)
    return path


def run(fx, tmp_path):
    """The config through the Runner on the fixture's batches and masks,
    from its initial weights."""
    k = fx['meta']['kwargs']
    clip_file = write_teacher(fx, tmp_path)
    make_tiny = tiny_itpn_clip(k, clip_file)
    model_cfg = config_model(CONFIG)
    make_tiny(model_cfg)
    conv = converter('itpn_to_mmmim')
    # the converter checks every name and shape against the tiny model
    initial = conv.convert(fx['state_dict'], MODELS.build(model_cfg), 'clip')
    outputs = HeadOutputs()
    # the stats check sees the identity preprocessor of the normalised feed
    with mock.patch.object(iTPNCLIPPretrainer, '_check_teacher_input_stats'):
        runner, log = train_like_fixture(
            CONFIG, fx, make_tiny, tmp_path,
            inputs=student_input(fx['inputs']['pixels']),
            fields=dict(mask=fx['inputs']['mask']),
            load_from=save_initial_checkpoint(initial, tmp_path),
            hooks=[outputs])
    runner.train()
    final = conv.KEYMAPS['clip'].convert(
        {name: value.float() for name, value in
         fx['outputs']['final_state_dict'].items()})
    return dict(runner=runner, log=log, outputs=outputs, initial=initial,
                final=final)


@pytest.fixture(scope='module')
def fx():
    return load_training_fixture('itpn_clip')


@pytest.fixture(scope='module')
def trained(fx, tmp_path_factory):
    return run(fx, tmp_path_factory.mktemp('itpn_clip_train'))


def test_itpn_clip_teacher_input_matches_reference(fx, trained):
    """The student's normalisation is the reference's (mean = std = 0.5,
    datasets.py:27-29), and the teacher undoes exactly it: the config's
    data preprocessor, the teacher's input statistics and the reference's
    agree, and the teacher's targets of every step are the reference
    teacher's on the [0, 1] image."""
    cfg = Config.fromfile(f'{ROOT}/configs/{CONFIG}')
    ref_mean = [255. * m for m in fx['meta']['input_mean']]
    ref_std = [255. * s for s in fx['meta']['input_std']]
    assert cfg.data_preprocessor.mean == ref_mean
    assert cfg.data_preprocessor.std == ref_std
    assert cfg.model.target_generator.input_mean == ref_mean
    assert cfg.model.target_generator.input_std == ref_std
    teacher = trained['runner'].model.target_generator
    assert torch.equal(teacher.input_mean.flatten() * 255.,
                       torch.tensor(ref_mean))
    assert torch.equal(teacher.input_std.flatten() * 255.,
                       torch.tensor(ref_std))
    # every step's target: the fixture's of the same batch
    targets = trained['outputs'].targets
    sched = fx['meta']['schedule']
    assert len(targets) == sched['epochs'] * sched['iters_per_epoch']
    for step, target in enumerate(targets):
        assert_close(target, fx['outputs']['targets'][
            step % sched['iters_per_epoch']], f'teacher target at {step}',
            tol=1e-5)


def test_itpn_clip_weight_decay_groups_match_reference(fx, trained):
    runner = trained['runner']
    keymap = converter('itpn_to_mmmim').KEYMAPS['clip']
    # optim_factory.py:196 with the model's no_weight_decay()
    # (modeling_pretrain.py:201-202): no decay for 1-D parameters, biases
    # and the absolute position table; the relative position tables and the
    # mask token are decayed
    decayed = {n for g in fx['meta']['groups'] if g['weight_decay'] > 0
               for n in g['names']}
    assert 'mask_token' in decayed and 'absolute_pos_embed' not in decayed
    assert 'blocks.4.attn.relative_position_bias_table' in decayed
    assert 'cls_pt_layers.0.attn.relative_position_bias_table' in decayed
    # every trained parameter at the reference's decay, the lr unscaled
    # (get_parameter_groups' lr_scale 1 without layer decay)
    expected = {keymap.map_key(name): (group['weight_decay'],
                                       group['lr_scale'])
                for group in fx['meta']['groups'] for name in group['names']}
    model = runner.model
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(expected)
    groups = groups_by_name(runner)
    assert {n: groups[n] for n in trainable} == expected
    # AdamW as the reference's: betas (0.9, 0.98), eps 1e-8
    sched = fx['meta']['schedule']
    for group in runner.optim_wrapper.optimizer.param_groups:
        assert tuple(group['betas']) == sched['betas']
        assert group['eps'] == sched['eps']


def test_itpn_clip_lr_and_weight_decay_of_every_step_match_reference(
        fx, trained):
    log = trained['log']
    ref, sched = fx['outputs'], fx['meta']['schedule']
    steps = sched['epochs'] * sched['iters_per_epoch']
    warmup = sched['warmup_epochs'] * sched['iters_per_epoch']
    lr, min_lr = sched['lr'], sched['min_lr']
    assert len(log.lrs) == steps == len(ref['lrs'])
    # the reference's lists (utils/utils.py:446-463): np.linspace(0, lr,
    # 4), then the half-cosine from lr over the remaining 4 steps
    assert ref['lrs'][:warmup, 0].tolist() == [0., lr / 3, 2 * lr / 3, lr]
    assert ref['lrs'][warmup:, 0].tolist() == pytest.approx(
        [min_lr + (lr - min_lr) * (1 + c) / 2
         for c in (1., 0.5**.5, 0., -0.5**.5)], rel=1e-15)
    for step, (lrs, ref_lrs) in enumerate(zip(log.lrs, ref['lrs'])):
        assert ref_lrs.tolist() == [float(ref_lrs[0])] * len(ref_lrs)
        if step < warmup:  # LinearWarmupLR(linspace=True): exactly
            assert lrs == [float(ref_lrs[0])] * len(lrs), f'lr at {step}'
        else:  # mmengine's cosine, computed recursively
            assert lrs == pytest.approx([float(ref_lrs[0])] * len(lrs),
                                        rel=1e-12), f'lr at {step}'
    # weight decay: the loop sets wd_schedule_values (constant without
    # --weight_decay_end) only on groups with wd > 0
    # (engine_for_pretraining.py:44-45): the no-decay group stays at 0, the
    # other at 0.05 throughout; mmmim's groups keep theirs
    assert ref['weight_decays'].tolist() == [
        [g['weight_decay'] for g in fx['meta']['groups']]] * steps
    assert fx['meta']['wd_schedule_values'].tolist() == \
        [sched['weight_decay']] * steps
    base_wd = trained['runner'].optim_wrapper.optimizer.defaults[
        'weight_decay']
    for group in trained['runner'].optim_wrapper.optimizer.param_groups:
        assert group.get('weight_decay', base_wd) in (0., 0.05)


#: README.md's run: 1,281,167 images // 32 per GPU // 64 GPUs
#: (run_itpn_pretraining.py:207)
README_ITERS_PER_EPOCH = 625


def config_warmup_lrs(iters_per_epoch):
    """The config's warm-up scheduler at its lr, converted to iterations as
    the Runner does, over its whole length and the step after it."""
    config = Config.fromfile(f'{ROOT}/configs/{CONFIG}')
    cfg = dict(config.param_scheduler[0])
    assert cfg.pop('type') == 'LinearWarmupLR'
    assert cfg.pop('convert_to_iter_based')
    cfg.pop('by_epoch')
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))],
                                  lr=config.optim_wrapper.optimizer.lr)
    scheduler = LinearWarmupLR.build_iter_from_epoch(
        optimizer, epoch_length=iters_per_epoch, **cfg)
    lrs = []
    for _ in range((cfg['end'] - cfg['begin']) * iters_per_epoch + 1):
        lrs.append(optimizer.param_groups[0]['lr'])
        optimizer.step()  # no gradient: nothing moves
        scheduler.step()
    return lrs


def test_itpn_clip_warmup_at_full_length_is_exactly_the_reference():
    """At the README's length (5 x 625 steps) the config's warm-up is the
    reference's ``np.linspace(0, lr, 3125)`` (utils/utils.py:454) to the
    last bit, then the lr."""
    lrs = config_warmup_lrs(README_ITERS_PER_EPOCH)
    assert lrs[:-1] == np.linspace(0, 1.5e-3,
                                   5 * README_ITERS_PER_EPOCH).tolist()
    assert lrs[-1] == 1.5e-3


def test_itpn_clip_both_loss_terms_of_every_step_match_reference(fx,
                                                                 trained):
    ref, log = fx['outputs'], trained['log']
    assert all(set(s) == {'loss'} for s in log.losses)
    losses = torch.stack([s['loss'] for s in log.losses])
    terms = trained['outputs'].terms()
    main = torch.stack([m for m, _ in terms])
    aux = torch.stack([a for _, a in terms])
    # the hooks saw the predictions the logged loss was computed from
    torch.testing.assert_close(main + aux, losses, rtol=1e-6, atol=0)
    assert_close(main, ref['loss_main'], 'main loss at every step')
    assert_close(aux, ref['loss_aux'], 'auxiliary loss at every step')
    assert_close(losses, ref['losses'], 'loss at every step')
    assert ref['losses'][-1] < ref['losses'][0]  # it did learn something


def test_itpn_clip_weights_move_as_in_reference(fx, trained):
    runner, initial = trained['runner'], trained['initial']
    checked = assert_weights_moved_alike(runner.model, initial,
                                         trained['final'])
    assert checked == sum(p.requires_grad for p in
                          runner.model.parameters())
    # the teacher is frozen: still the reference's CLIP
    visual = runner.model.target_generator.visual.state_dict()
    for name, value in fx['teacher_state_dict'].items():
        assert torch.equal(visual[name], value.float()), name
    # the tables the weight-decay rule singles out did move
    for name in ('backbone.pos_embed', 'backbone.mask_token'):
        assert (runner.model.state_dict()[name] - initial[name]).abs(
        ).max() > 1e-4, name
