"""iTPN's pixel config trained by mmmim's Runner against six steps of
sunsmarterjie/iTPN's own training loop (``itpn_pixel_train`` fixture): the
same weight-decay groups (the learnable position table decayed, as the
reference's ``add_weight_decay`` without a skip list does), lr at every
iteration, loss at every step and weights at the end; the position table
resampled at every step as the reference does with dropped patches."""
import pytest
import torch

from mmpretrain.registry import MODELS

from .test_reference_parity import config_model, converter, rel_err
from .training_parity import (assert_close, assert_lrs_are_reference,
                              assert_weights_moved_alike, groups_by_name,
                              load_training_fixture, save_initial_checkpoint,
                              train_like_fixture)

CONFIG = 'itpn/itpn-base_pixel_800e.py'


def tiny_itpn(k):
    """The fixture's model size in the config's model (in place)."""
    grid = k['img_size'] // k['patch_size']

    def make_tiny(model):
        model.backbone.update(
            arch=dict(embed_dims=k['embed_dim'],
                      depths=[k['mlp_depth'], k['mlp_depth'], k['depth']],
                      num_heads=k['num_heads']),
            img_size=k['img_size'], patch_size=k['patch_size'])
        model.neck.update(in_channels=k['embed_dim'], fpn_dim=k['fpn_dim'],
                          fpn_depth=k['fpn_depth'])
        model.decoder.update(
            num_patches=grid * grid, patch_size=k['patch_size'],
            fpn_dim=k['fpn_dim'], embed_dim=k['decoder_embed_dim'],
            depth=k['decoder_depth'], num_heads=k['decoder_num_heads'])
        model.head.update(patch_size=k['patch_size'])
    return make_tiny


def run_like_fixture(tmp_path, make_tiny=tiny_itpn):
    """The Runner trained on the fixture's batches and masks from its
    initial weights: (fixture, initial and final reference weights under
    mmmim's names, runner, step log)."""
    fx = load_training_fixture('itpn_pixel')
    k = fx['meta']['kwargs']
    grid = k['img_size'] // k['patch_size']
    # the converter checks every name and shape against the tiny model
    model_cfg = config_model(CONFIG)
    make_tiny(k)(model_cfg)
    conv = converter('itpn_to_mmmim')
    initial = conv.convert(fx['state_dict'], MODELS.build(model_cfg),
                           'pixel')
    runner, log = train_like_fixture(
        CONFIG, fx, make_tiny(k), tmp_path,
        inputs=list(fx['inputs']['img']),
        fields=dict(mask=list(fx['inputs']['mask'].view(-1, grid, grid))),
        load_from=save_initial_checkpoint(initial, tmp_path))
    runner.train()
    final = conv.KEYMAPS['pixel'].convert(
        {name: value.float() for name, value in
         fx['outputs']['final_state_dict'].items()})
    return fx, initial, final, runner, log


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    return run_like_fixture(tmp_path_factory.mktemp('itpn_train'))


def test_itpn_pixel_weight_decay_groups_match_reference(trained):
    fx, _, _, runner, _ = trained
    keymap = converter('itpn_to_mmmim').KEYMAPS['pixel']
    # main_pretrain.py:178: no decay for 1-D parameters and biases only;
    # the position table (3-D) and the mask token are decayed
    decayed = {n for g in fx['meta']['groups'] if g['weight_decay'] > 0
               for n in g['names']}
    assert {'absolute_pos_embed', 'mask_token'} <= decayed
    # every trained parameter at the reference's decay, the lr unscaled
    expected = {keymap.map_key(name): (group['weight_decay'], 1.0)
                for group in fx['meta']['groups'] for name in group['names']}
    assert groups_by_name(runner) == expected


def test_itpn_pixel_lr_of_every_step_matches_reference(trained):
    fx, _, _, _, log = trained
    assert_lrs_are_reference(log, fx)


def test_itpn_pixel_loss_of_every_step_matches_reference(trained):
    fx, _, _, _, log = trained
    ref = fx['outputs']
    assert all(set(s) == {'loss'} for s in log.losses)
    losses = torch.stack([s['loss'] for s in log.losses])
    assert_close(losses, ref['losses'], 'loss at every step')
    assert ref['losses'][-1] < ref['losses'][0]  # it did learn something


def test_itpn_pixel_weights_move_as_in_reference(trained):
    fx, initial, final, runner, _ = trained
    # the position table's change also checks its per-step resampling: the
    # stored table added instead (reference_pos_interp=False) changes the
    # loss by under 1e-6 here, the table's change by 90 %
    checked = assert_weights_moved_alike(runner.model, initial, final)
    assert checked == sum(p.requires_grad for p in
                          runner.model.parameters())
    # the learnable position table trained (decayed and resampled)
    pos = runner.model.backbone.pos_embed
    assert pos.requires_grad
    assert rel_err(pos.detach(), initial['backbone.pos_embed']) > 1e-4
