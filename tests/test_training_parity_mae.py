"""MAE's config trained by mmmim's Runner against six steps of
facebookresearch/mae's own training loop (``mae_train`` fixture): the same
weight-decay groups, lr at every iteration, loss at every step and weights at
the end."""
import torch

from mmmim.converters import MAE_KEYMAP
from .training_parity import (assert_close, assert_lrs_are_reference,
                              assert_weights_moved_alike, groups_by_name,
                              load_training_fixture, save_initial_checkpoint,
                              tiny_mae, train_like_fixture)

CONFIG = 'mae/mae-vit-base_pixel_1600e.py'


def test_mae_training_loop_matches_reference(tmp_path):
    fx = load_training_fixture('mae')
    ref = fx['outputs']
    initial = MAE_KEYMAP.convert(fx['state_dict'])
    grid = fx['meta']['kwargs']['img_size'] // fx['meta']['kwargs'][
        'patch_size']
    runner, log = train_like_fixture(
        CONFIG, fx, tiny_mae(fx['meta']['kwargs']), tmp_path,
        inputs=list(fx['inputs']['img']),
        fields=dict(mask=list(fx['inputs']['mask'].view(-1, grid, grid))),
        load_from=save_initial_checkpoint(initial, tmp_path))
    runner.train()

    # weight-decay groups: main_pretrain.py's (no decay for 1-D parameters
    # and biases; cls and mask tokens decayed)
    groups = groups_by_name(runner)
    for group in fx['meta']['groups']:
        for name in group['names']:
            wd, _ = groups[MAE_KEYMAP.map_key(name)]
            assert wd == group['weight_decay'], name
    assert len(groups) == sum(len(g['names']) for g in fx['meta']['groups'])

    # the lr of every step, warm-up from 0 (LinearWarmupLR) and cosine
    assert_lrs_are_reference(log, fx)

    losses = torch.stack([s['loss'] for s in log.losses])
    assert_close(losses, ref['losses'], 'loss at every step')
    assert ref['losses'][-1] < ref['losses'][0]  # it did learn something
    final = MAE_KEYMAP.convert(ref['final_state_dict'])
    checked = assert_weights_moved_alike(runner.model, initial, final)
    assert checked == sum(p.requires_grad for p in
                          runner.model.parameters())
