"""MAE's ImageNet fine-tuning config trained by mmmim's Runner against six
steps of facebookresearch/mae's own fine-tuning loop
(``mae_finetune_train`` fixture): every parameter's layer-decay lr scale and
weight decay, the lr of every group at every step, the loss at every step
and every weight's change over the run.

The reference ran without mixup / cutmix, RandAugment, random erasing and
drop path (their draws are random): its criterion is then
``LabelSmoothingCrossEntropy(0.1)`` (main_finetune.py:293-294). The Runner
trains the config with its Mixup / CutMix batch augments removed and
drop path 0; the config's loss, ``LabelSmoothLoss(0.1, mode='original')``,
is the same function, and with mixup on it is also timm's smoothed mixup
target with ``SoftTargetCrossEntropy`` (main_finetune.py:222-225, 290-292;
:func:`test_loss_with_mixup_is_the_reference_criterion`).

The cosine's floor is scaled per group like the lr (util/lr_sched.py:14-18:
``min_lr x lr_scale``): ``LayerDecayCosineAnnealingLR``. mmengine's
``CosineAnnealingLR(eta_min=1e-6)``, which the config had, took every group
to 1e-6, so the groups below the top layer trained with a larger lr than the
reference's through the cosine; this test found it.
"""
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmpretrain.registry import MODELS

from mmmim.converters import MAE_KEYMAP, KeyMap
from .test_reference_parity import ROOT, vit_arch
from .training_parity import (assert_close, assert_weights_moved_alike,
                              load_training_fixture, save_initial_checkpoint,
                              train_like_fixture)

CONFIG = 'benchmarks/classification/mae_vit-base-p16_ft-100e_in1k.py'

#: the fine-tuning model's names: MAE's encoder, then fc_norm (mmpretrain's
#: ``ln2`` with ``out_type='avg_featmap'``) and the head's linear layer
FINETUNE_KEYMAP = KeyMap(
    [(ref, mine) for ref, mine, *_ in MAE_KEYMAP.pairs] + [
        ('fc_norm.{x}', 'backbone.ln2.{x}'),
        ('head.{x}', 'head.fc.{x}'),
    ],
    block_renames=MAE_KEYMAP.block_renames)


def tiny_classifier(k):
    """The fixture's model in the config's classifier (in place): its size,
    no drop path, no pre-trained checkpoint (the Runner loads the
    reference's weights), no Mixup / CutMix (the reference ran without);
    the data preprocessor a ``ClsDataPreprocessor``, which
    ``train_like_fixture`` sets to leave the normalised images as they
    are."""

    def make_tiny(model):
        model.backbone.update(
            arch=vit_arch(k),
            img_size=k['img_size'], patch_size=k['patch_size'],
            drop_path_rate=0., init_cfg=None)
        model.head.update(in_channels=k['embed_dim'],
                          num_classes=k['num_classes'])
        # ImageClassifier hands train_cfg.augments to the data preprocessor
        model.pop('train_cfg')
        model.data_preprocessor = dict(type='ClsDataPreprocessor')
    return make_tiny


def train(fx, work_dir):
    k = fx['meta']['kwargs']
    initial = FINETUNE_KEYMAP.convert(fx['state_dict'])
    runner, log = train_like_fixture(
        CONFIG, fx, tiny_classifier(k), work_dir,
        inputs=fx['inputs']['img'],
        fields=dict(gt_label=fx['inputs']['label'].view(-1, 1)),
        load_from=save_initial_checkpoint(initial, work_dir))
    assert set(initial) == set(runner.model.state_dict())
    runner.train()
    return runner, log, initial


@pytest.fixture(scope='module')
def fx():
    return load_training_fixture('mae_finetune')


@pytest.fixture(scope='module')
def as_configured(fx, tmp_path_factory):
    return train(fx, tmp_path_factory.mktemp('as_configured'))


def groups_by_name(runner):
    """The Runner's optimiser groups as {parameter name: (lr scale,
    weight decay)}."""
    names = {id(p): n for n, p in runner.model.named_parameters()}
    return {names[id(p)]: (g['lr_scale'], g['weight_decay'])
            for g in runner.optim_wrapper.optimizer.param_groups
            for p in g['params']}


def lrs_by_name(runner, step_lrs):
    """Each step's lr of every parameter (mmmim names), from the lrs of the
    Runner's groups."""
    names = {id(p): n for n, p in runner.model.named_parameters()}
    groups = runner.optim_wrapper.optimizer.param_groups
    return [{names[id(p)]: lr for g, lr in zip(groups, lrs)
             for p in g['params']} for lrs in step_lrs]


def reference_lrs_by_name(fx):
    """The same for the reference's groups (their order in the fixture)."""
    names = [[FINETUNE_KEYMAP.map_key(n) for n in g['names']]
             for g in fx['meta']['groups']]
    return [{n: float(lr) for group, lr in zip(names, lrs) for n in group}
            for lrs in fx['outputs']['lrs']]


def assert_lrs_match(runner, log, fx, steps):
    ours, ref = lrs_by_name(runner, log.lrs), reference_lrs_by_name(fx)
    assert len(ours) == len(ref) == 6
    for step in steps:
        assert set(ours[step]) == set(ref[step])
        for name, lr in ref[step].items():
            # the same products in another order: equal to 1e-12
            assert ours[step][name] == pytest.approx(lr, rel=1e-12,
                                                     abs=1e-18), \
                (step, name)


def assert_training_matches(fx, runner, log, initial):
    ref = fx['outputs']
    assert all(set(step) == {'loss'} for step in log.losses)  # one term
    losses = torch.stack([s['loss'] for s in log.losses])
    assert_close(losses, ref['losses'], 'loss at every step')
    assert ref['losses'][-1] < ref['losses'][0]  # it did learn something
    final = FINETUNE_KEYMAP.convert(ref['final_state_dict'])
    checked = assert_weights_moved_alike(runner.model, initial, final)
    assert checked == sum(p.requires_grad for p in
                          runner.model.parameters())


def test_optimizer_matches_reference(fx, as_configured):
    """``param_groups_lrd``'s lr scale and weight decay of every parameter
    by name (4 layer levels: patch embedding and tokens, two blocks, fc_norm
    and head; no decay for 1-D parameters, ``pos_embed`` and
    ``cls_token``), AdamW with the reference's betas, eps, wd and lr (5e-4 x
    1024 / 256), no gradient clipping."""
    runner, _, _ = as_configured
    meta = fx['meta']
    groups = groups_by_name(runner)
    expected = {FINETUNE_KEYMAP.map_key(n): (g['lr_scale'], g['weight_decay'])
                for g in meta['groups'] for n in g['names']}
    assert set(groups) == set(expected)
    for name, (scale, wd) in expected.items():
        assert groups[name][0] == pytest.approx(scale, rel=1e-12), name
        assert groups[name][1] == wd, name
    assert len({s for s, _ in expected.values()}) == 4
    optimizer = runner.optim_wrapper.optimizer
    assert type(optimizer).__name__ == 'AdamW'
    assert optimizer.defaults['betas'] == tuple(meta['betas'])
    assert optimizer.defaults['eps'] == meta['eps']
    sched = meta['schedule']
    assert optimizer.defaults['weight_decay'] == sched['weight_decay']
    assert optimizer.defaults['lr'] == sched['lr'] == \
        sched['blr'] * sched['total_batch'] / 256
    assert meta['clip_grad'] is None
    assert not runner.optim_wrapper.clip_grad_kwargs


def test_lr_of_every_group_matches_reference(fx, as_configured):
    """Warm-up from 0 (steps 0 and 1), the full lr at its end (step 2), then
    the cosine to min_lr, all scaled per group."""
    runner, log, _ = as_configured
    assert_lrs_match(runner, log, fx, steps=range(6))


def test_training_matches_reference(fx, as_configured):
    """The loss at every step and every weight's change over the run."""
    assert_training_matches(fx, *as_configured)


def test_loss_with_mixup_is_the_reference_criterion(fx):
    """With Mixup / CutMix on, mmpretrain mixes one-hot scores
    (``lam y + (1 - lam) y[index]``, batch_augments/mixup.py) and the
    config's ``LabelSmoothLoss`` smooths the mix; the reference smooths the
    one-hot targets before mixing them (timm ``mixup_target``) and takes
    ``SoftTargetCrossEntropy``: the same target and loss (here with the
    reference's pairing, the flipped batch)."""
    ref = fx['outputs']['mixup']
    loss_module = MODELS.build(
        Config.fromfile(f'{ROOT}/configs/{CONFIG}').model.head.loss)
    num_classes = ref['logits'].shape[1]
    one_hot = F.one_hot(ref['labels'], num_classes).float()
    lam = ref['lam']
    mixed = lam * one_hot + (1 - lam) * one_hot.flip(0)
    loss = loss_module(ref['logits'], mixed, avg_factor=len(mixed))
    assert_close(loss_module.smooth_label(mixed), ref['target'],
                 'smoothed mixup target', tol=1e-6)
    assert_close(loss, ref['loss'], 'loss with mixup', tol=1e-6)
