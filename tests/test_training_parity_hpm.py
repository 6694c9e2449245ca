"""HPM's config trained by mmmim's Runner against six steps of
Haochen-Wang409/HPM's own training loop (``hpm_train`` fixture): the same
weight-decay groups, lr at every iteration, both loss terms at every step,
the EMA teacher's momentum at every update, its hard patches at every step
and the student's and teacher's weights at the end.

The schedule's correspondence: the reference ran ``args.epochs = 3``, the
Runner ``train_cfg.max_epochs = 3`` (``short_schedule``); ``HPMTarget`` reads
the epoch and ``max_epochs`` from the message hub, so the number of hard
patches K = int(12 x float((epoch + 1) / 3) x 0.5) = 2, 4, 6 on both sides
(engine_pretrain.py:70-71, models_mae_learn_loss.py:270-280). The momentum
ramp is 100 epochs in both (hard-coded in engine_pretrain.py:41-44; the
config's ``momentum_warmup=100``), whatever the total: 0.999, 0.999009,
0.999018 over the three epochs.

The reference mined each step's mask from its teacher with np.random; the
fixture holds the masks it used and :class:`ReferenceMasks` gives them to the
student as the pipeline's ``data_samples[i].mask``, which mmmim uses as
given (no teacher pass); ``HPMTeacherHook`` still updates the teacher after
every step, and :class:`TeacherMining` checks that mmmim's own teacher would
have picked the same hard patches.
"""
import pytest
import torch
from mmengine.hooks import Hook

from mmmim.converters import HPM_KEYMAP
from .test_reference_parity import converter
from .training_parity import (TOL, assert_close, groups_by_name,
                              load_training_fixture, reference_lr,
                              save_initial_checkpoint, tiny_mae,
                              train_like_fixture, without_key_bias)

CONFIG = 'hpm/hpm-vit-base_pixel_800e.py'
TEACHER = 'target_generator.teacher.'


def tiny_hpm(fx):
    """The fixture's model size in the config's model (in place)."""
    k = fx['meta']['kwargs']
    tiny_encoder_decoder = tiny_mae(k)

    def make_tiny(model):
        tiny_encoder_decoder(model)
        model.loss_predictor.update(
            embed_dims=k['decoder_embed_dim'], depth=k['decoder_depth'],
            num_heads=k['decoder_num_heads'], mlp_ratio=k['mlp_ratio'],
            out_channels=k['patch_size']**2 * 3)
    return make_tiny


class ReferenceMasks(Hook):
    """Each step's mask as the reference's teacher mined it, as the
    pipeline's ``data_samples[i].mask`` of that step's batch."""
    priority = 'VERY_HIGH'

    def __init__(self, masks, grid):
        self.masks, self.grid = masks, grid

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        for sample, mask in zip(data_batch['data_samples'],
                                self.masks[runner.iter]):
            sample.set_field(mask.view(self.grid, self.grid), 'mask')


class TeacherMining(Hook):
    """Before each step: mmmim's teacher's predicted losses on the full
    image, its K for the Runner's epoch and the K patches it would mine."""
    priority = 'LOWEST'

    def __init__(self):
        self.scores, self.num_hard, self.hard = [], [], []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        model = runner.model
        inputs = model.data_preprocessor(data_batch, True)['inputs']
        scores, _ = model.rank_patches(inputs)
        k = model.target_generator.num_hard(scores.shape[1])
        self.scores.append(scores)
        self.num_hard.append(k)
        self.hard.append(scores.topk(k, dim=1).indices.sort(dim=1).values)


class StepScalars(Hook):
    """After each step: the momentum ``HPMTeacherHook`` used, and the
    gradient norm before clipping (logged only where the optimiser wrapper
    clips)."""
    priority = 'LOWEST'

    def __init__(self):
        self.momenta, self.grad_norms = [], []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        scalars = runner.message_hub.log_scalars
        for values, key in ((self.momenta, 'train/teacher_momentum'),
                            (self.grad_norms, 'train/grad_norm')):
            values.append(scalars[key].current() if key in scalars else None)


def initial_checkpoint(fx):
    """The reference's student, and its teacher: a copy of it (timm's
    ``ModelEma`` deep-copies the model, main_pretrain.py:236)."""
    state = fx['state_dict']
    return converter('hpm_to_mmmim').convert_hpm(
        dict(state_dict=state, ema_state_dict=state))['state_dict']


def run(fx, tmp_path):
    """The config through the Runner on the fixture's batches and masks."""
    grid = fx['meta']['kwargs']['img_size'] // fx['meta']['kwargs'][
        'patch_size']
    initial = initial_checkpoint(fx)
    mining, scalars = TeacherMining(), StepScalars()
    runner, log = train_like_fixture(
        CONFIG, fx, tiny_hpm(fx), tmp_path, inputs=fx['inputs']['img'],
        load_from=save_initial_checkpoint(initial, tmp_path),
        hooks=[ReferenceMasks(fx['inputs']['mask'], grid), mining,
               scalars])
    runner.train()
    return dict(runner=runner, log=log, mining=mining, scalars=scalars,
                initial=initial)


def check_schedule_losses_teacher(fx, out):
    """Groups, lrs, both loss terms, the momentum and the mining of every
    step (all but the final weights)."""
    ref, sched = fx['outputs'], fx['meta']['schedule']
    runner, log = out['runner'], out['log']
    # weight-decay groups: main_pretrain.py:254 (timm add_weight_decay: no
    # decay for 1-D parameters and biases; cls and mask tokens decayed)
    groups = groups_by_name(runner)
    student = {n for n, p in runner.model.named_parameters()
               if p.requires_grad}
    assert set(groups) >= student
    for group in fx['meta']['groups']:
        for name in group['names']:
            wd, lr_mult = groups[HPM_KEYMAP.map_key(name)]
            assert (wd, lr_mult) == (group['weight_decay'], 1.0), name
    assert len(student) == sum(len(g['names']) for g in fx['meta']['groups'])

    # the lr of every step: warm-up from 0 (LinearWarmupLR), cosine
    steps = sched['epochs'] * sched['iters_per_epoch']
    assert len(log.lrs) == steps == len(ref['lrs'])
    for step, (lrs, ref_lrs) in enumerate(zip(log.lrs, ref['lrs'])):
        assert ref_lrs.tolist() == [reference_lr(step, sched)] * 2
        assert lrs == pytest.approx([float(ref_lrs[0])] * len(lrs),
                                    rel=1e-12, abs=1e-15), f'lr at {step}'

    for term, ref_term in (('loss_rec', 'loss_rec'),
                           ('loss_pred', 'loss_pred')):
        values = torch.stack([s[term] for s in log.losses])
        assert_close(values, ref[ref_term], f'{term} at every step')

    # the teacher's momentum after every step, exactly the reference's
    assert out['scalars'].momenta == ref['momentum'].tolist(), \
        'teacher momentum at every step'
    assert ref['momentum'].tolist() == [0.999 + e / 100 * (0.9999 - 0.999)
                                        for e in (0, 0, 1, 1, 2, 2)]

    # mmmim's teacher at every step: the reference teacher's predicted
    # losses, its K and the same K hardest patches
    mining = out['mining']
    assert mining.num_hard == fx['meta']['num_hard'] == [2, 2, 4, 4, 6, 6], \
        f'hard patches per step: {mining.num_hard}'
    for step, scores in enumerate(mining.scores):
        assert_close(scores, ref['teacher_scores'][step],
                     f"teacher's predicted losses at step {step}")
        assert torch.equal(mining.hard[step], ref['hard_patches'][step]), \
            f'hard patches at step {step}'
        # the reference's mask holds its hard patches (mined, then fed)
        assert fx['inputs']['mask'][step].gather(
            1, mining.hard[step]).all()


#: parameters whose gradient is zero but for rounding: the relative loss
#: compares predicted losses within an image, so a shift of all of them (the
#: loss predictor's last bias, and its last norm's bias through the mean over
#: channels) changes nothing; AdamW moves them by rounding noise, in the
#: reference as in mmmim
SHIFT_INVARIANT = ('loss_predictor.pred.bias', 'loss_predictor.norm.bias')

#: float32 rounding of the weights themselves: at the config's lr (1.5e-4)
#: six steps move a weight by about 4e-4, so one rounding of a weight near 1
#: (1.2e-7) is 3e-4 of the change; the teacher moves 1000 times less (1e-6,
#: a few to a few hundred roundings). Changes agree to TOL of the largest
#: change plus this many float32 epsilons of the weight.
ROUNDINGS = 3


def check_final_weights(fx, out):
    """Every trainable tensor of the student, and every tensor of the
    teacher, moved as in the reference."""
    ref = fx['outputs']
    runner, initial = out['runner'], out['initial']
    final = HPM_KEYMAP.convert(ref['final_state_dict'])
    final.update({TEACHER + k: v for k, v in HPM_KEYMAP.convert(
        ref['final_ema_state_dict']).items()})
    state = runner.model.state_dict()
    eps = torch.finfo(torch.float32).eps
    lr_sum = float(ref['lrs'][:, 0].sum())
    checked = 0
    for name, start in initial.items():
        end = state[name].float()
        moved = without_key_bias(name, end - start)
        ref_moved = without_key_bias(name, final[name] - start)
        if name.endswith(SHIFT_INVARIANT):
            # rounding noise: both barely move
            for what, change in (('mmmim', moved), ('reference', ref_moved)):
                assert change.abs().max() < 0.1 * lr_sum, (name, what)
            continue
        if not ref_moved.any():
            assert not moved.any(), f'{name} moved; in the reference it stays'
            continue
        rounding = ROUNDINGS * eps * without_key_bias(
            name, torch.maximum(start.abs(), final[name].abs()))
        excess = ((moved - ref_moved).abs() - rounding).clamp(min=0)
        err = float(excess.max() / ref_moved.abs().max())
        assert err <= TOL, (f'{name} change over the run: max |mmmim - '
                            f'reference| (less {ROUNDINGS} roundings) / max '
                            f'|reference| = {err:.2e} > {TOL:.0e}')
        checked += 1
    trainable = [n for n, p in runner.model.named_parameters()
                 if p.requires_grad and not n.endswith(SHIFT_INVARIANT)]
    teacher = [n for n in state if n.startswith(TEACHER) and
               not n.endswith(SHIFT_INVARIANT)]
    assert checked == len(trainable) + len(teacher)
    # the teacher averages the fixed sin-cos tables too (they stay but for
    # rounding, alike)
    assert len(teacher) == len(trainable) + 2


@pytest.fixture(scope='module')
def fixture():
    return load_training_fixture('hpm')


@pytest.fixture(scope='module')
def as_configured(fixture, tmp_path_factory):
    return run(fixture, tmp_path_factory.mktemp('hpm_as_configured'))


def test_hpm_schedule_losses_and_teacher_match_reference(fixture,
                                                         as_configured):
    check_schedule_losses_teacher(fixture, as_configured)


def test_hpm_clips_gradients_as_the_reference(fixture, as_configured):
    """At norm 5, HPM's loss scaler's default (util/misc.py:256): the
    fixture's gradients lie on both sides of it, and the gradient norm of
    every step before clipping is the reference's."""
    ref = fixture['outputs']
    assert (ref['grad_norm'] > 5).sum() >= 3 and (ref['grad_norm'] < 5).any()
    assert_close(torch.tensor(as_configured['scalars'].grad_norms),
                 ref['grad_norm'], 'gradient norm at every step')


def test_hpm_final_weights_match_reference(fixture, as_configured):
    check_final_weights(fixture, as_configured)
