"""SIM's config trained by mmmim's Runner against six steps of
OpenGVLab/Siamese-Image-Modeling's own training loop (``sim_train``
fixture): the same weight-decay groups, lr, momentum and clipped gradient
norm at every iteration, loss at every step, and the online and momentum
weights at the end."""
import copy
import math

import pytest
import torch
from mmengine.hooks import Hook

from .test_reference_parity import converter, vit_arch
from .training_parity import (TOL, assert_close, assert_lrs_are_reference,
                              assert_weights_moved_alike, groups_by_name,
                              load_training_fixture, save_initial_checkpoint,
                              train_like_fixture, without_key_bias)

CONFIG = 'sim/sim-vit-base_1600e.py'


def tiny_sim(k, args):
    """The fixture's model size in the config's model (in place)."""
    grid = k['img_size'] // k['patch_size']

    def make_tiny(model):
        model.backbone.update(
            arch=vit_arch(k),
            img_size=k['img_size'], patch_size=k['patch_size'])
        model.head.update(
            in_channels=k['embed_dim'], embed_dims=args['decoder_embed_dim'],
            grid_size=grid, num_heads=k['decoder_num_heads'],
            mlp_ratio=k['mlp_ratio'],
            projector_depth=args['projector_depth'],
            predictor_depth=args['predictor_depth'])
    return make_tiny


def sim_fields(fx):
    """Each sample's DataSample fields as the config's pipeline packs them
    (``SIMTwoViews`` + ``BlockwiseMaskGenerator`` + ``PackInputs``): (h, w)
    int mask, (2, 4) float32 crop boxes, (2,) bool flips, int width. (As
    tensors: the pipeline's numpy arrays do not print into a config; the
    model reads both with ``torch.as_tensor``.)"""
    inputs = fx['inputs']
    num = len(inputs['x1'])
    return dict(
        mask=list(inputs['mask'].int()),
        crop_boxes=list(inputs['crop_boxes'].float()),
        flips=list(inputs['flips']),
        img_width=[int(fx['meta']['img_width'])] * num)


class MomentumLog(Hook):
    """The momentum each iteration's target pass used and the gradient
    norm before clipping."""
    priority = 'LOWEST'

    def __init__(self):
        self.momenta, self.grad_norms = [], []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.momenta.append(runner.model.momentum)
        # logged by the optimiser wrapper where it clips
        scalars = runner.message_hub.log_scalars
        self.grad_norms.append(scalars['train/grad_norm'].current()
                               if 'train/grad_norm' in scalars else math.nan)


def reference_momentum(step, sched):
    """engine_pretrain.py:58-59 (``mmschedule='cosine'``)."""
    epoch = step / sched['iters_per_epoch']
    return 1. - 0.5 * (1. + math.cos(math.pi * epoch / sched['epochs'])) * (
        1. - sched['base_momentum'])


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """The Runner trained on the fixture's batches (once for all tests)."""
    fx = load_training_fixture('sim')
    work_dir = tmp_path_factory.mktemp('sim_train')
    conv = converter('sim_to_mmmim')
    initial = conv.SIM_KEYMAP.convert(fx['state_dict'])
    momentum_log = MomentumLog()
    runner, log = train_like_fixture(
        CONFIG, fx, tiny_sim(fx['meta']['kwargs'], fx['meta']['args']),
        work_dir,
        inputs=[[x1, x2] for x1, x2 in zip(fx['inputs']['x1'],
                                           fx['inputs']['x2'])],
        fields=sim_fields(fx),
        load_from=save_initial_checkpoint(initial, work_dir),
        hooks=[momentum_log])
    # every model tensor comes from the reference (the converter checks)
    conv.convert_sim(fx['state_dict'], runner.model)
    runner.train()
    final = conv.SIM_KEYMAP.convert(fx['outputs']['final_state_dict'])
    return dict(fx=fx, runner=runner, log=log, momentum=momentum_log,
                initial=initial, final=final, keymap=conv.SIM_KEYMAP)


def test_sim_weight_decay_groups_match_reference(trained):
    """main_pretrain.py's timm ``param_groups_weight_decay``: no decay for
    1-D parameters and biases; cls and mask tokens decayed; frozen
    parameters (patch embedding, momentum branch) in no group."""
    fx, runner, keymap = trained['fx'], trained['runner'], trained['keymap']
    groups = groups_by_name(runner)
    trainable = {n for n, p in runner.model.named_parameters()
                 if p.requires_grad}
    ref_names = set()
    for group in fx['meta']['groups']:
        for name in group['names']:
            ours = keymap.map_key(name)
            ref_names.add(ours)
            wd, lr_mult = groups[ours]
            assert wd == group['weight_decay'], name
            assert lr_mult == group['lr_scale'], name
    assert trainable == ref_names


def test_sim_lr_and_momentum_every_step_match_reference(trained):
    fx, log = trained['fx'], trained['log']
    ref, sched = fx['outputs'], fx['meta']['schedule']
    assert_lrs_are_reference(log, fx)
    # the cosine momentum of the fractional epoch, set before each step
    ours = trained['momentum'].momenta
    steps = sched['epochs'] * sched['iters_per_epoch']
    assert ref['momentum'].tolist() == [reference_momentum(s, sched)
                                        for s in range(steps)]
    assert ours == pytest.approx(ref['momentum'].tolist(), rel=1e-15)


def test_sim_loss_and_clipped_gradient_every_step_match_reference(trained):
    fx, log = trained['fx'], trained['log']
    ref = fx['outputs']
    losses = torch.stack([s['loss'] for s in log.losses])
    assert_close(losses, ref['losses'], 'UniGrad loss at every step')
    assert ref['losses'][-1] < ref['losses'][0]  # it did learn something
    # the norm before clipping: above the clip (1.0) at every step, so
    # that clipping acts on every update
    grad_norms = torch.tensor(trained['momentum'].grad_norms)
    assert (ref['grad_norm'] > fx['meta']['schedule']['clip_grad']).all()
    assert_close(grad_norms, ref['grad_norm'], 'gradient norm at every step')


def test_sim_online_weights_move_alike(trained):
    """Every trainable parameter and BatchNorm statistic of the online
    branch changes over the run as in the reference; the frozen patch
    embedding stays as it was, on both sides."""
    runner, initial, final = (trained['runner'], trained['initial'],
                              trained['final'])
    model = runner.model
    state = model.state_dict()
    frozen = [n for n in initial if n.startswith('backbone.patch_embed.')]
    assert frozen and not any(
        p.requires_grad for p in model.backbone.patch_embed.parameters())
    for name in frozen:
        assert torch.equal(final[name], initial[name]), name
        assert torch.equal(state[name], initial[name]), name
    momentum = [n for n in initial if n.startswith('momentum_branch.')]
    checked = assert_weights_moved_alike(model, initial, final,
                                         skip=momentum)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    online_bn = [n for n in initial if n.startswith('head.') and (
        'running' in n or 'batches' in n)]
    assert online_bn and checked == len(trainable) + len(online_bn)


def test_sim_momentum_branch_moves_alike(trained):
    """Every momentum parameter and BatchNorm statistic changes over the
    run as in the reference (key biases aside: ``without_key_bias``), to
    ``TOL`` of its largest change or two float32 steps of its values,
    whichever is larger: a LayerNorm weight near 1 moves by about 1e-3 in
    six steps at m ~ 0.995, so 1e-4 of that is one rounding step of the
    weight itself (how the update rounds: the test below)."""
    runner, initial, final = (trained['runner'], trained['initial'],
                              trained['final'])
    state = runner.model.state_dict()
    names = [n for n in initial if n.startswith('momentum_branch.')]
    for name in names:
        start = initial[name].double()
        moved = without_key_bias(name, state[name].double() - start)
        ref_moved = without_key_bias(name, final[name].double() - start)
        assert ref_moved.abs().max() > 0, f'{name} does not move'
        resolution = 2 * torch.finfo(torch.float32).eps * float(
            final[name].abs().max())
        allowed = max(TOL * float(ref_moved.abs().max()), resolution)
        err = float((moved - ref_moved).abs().max())
        assert err <= allowed, (f'{name} change over the run: max |mmmim - '
                                f'reference| = {err:.2e} > {allowed:.2e}')
    params = [n for n, _ in runner.model.momentum_branch.named_parameters()]
    assert len(names) == len(params) + len(
        [n for n in names if 'running' in n or 'batches' in n])


def test_sim_first_momentum_update_rounds_as_reference(trained):
    """The first update starts from the same online and momentum weights on
    both sides, so its result is the same float32 numbers, bit for bit."""
    fx = trained['fx']
    # a copy of the model back at the initial weights, updated once with the
    # first step's momentum
    model = copy.deepcopy(trained['runner'].model)
    model.load_state_dict(trained['initial'])
    model.momentum_update(float(fx['outputs']['momentum'][0]))
    ours = model.state_dict()
    differ = [name for name, value in
              fx['outputs']['momentum_after_first_update'].items()
              if not torch.equal(ours[trained['keymap'].map_key(name)],
                                 value)]
    assert not differ, f'{len(differ)} momentum tensors differ: {differ}'
