"""Exact resume for every method: a tiny run interrupted at iteration 3 and
resumed gives the same losses afterwards as the uninterrupted run (CPU,
deterministic). Covers the optimizer, schedulers, HPM's teacher and its
schedule position, SIM's momentum branch, and the random state: across an
epoch boundary in the replayed batches, and on each of two processes."""
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.hooks import Hook

from mmmim.engine import ResilientRunner
from .conftest import requires_fashion_mnist
from .multiprocess import run_ranks

ROOT = Path(__file__).resolve().parents[1]
TINY_VIT = dict(embed_dims=32, num_layers=1, num_heads=2,
                feedforward_channels=64)
MAE_STYLE_NECK = {'model.neck.embed_dim': 32,
                  'model.neck.decoder_embed_dim': 16,
                  'model.neck.decoder_depth': 1,
                  'model.neck.decoder_num_heads': 2}
TINY = dict(
    mae={'model.backbone.arch': TINY_VIT, **MAE_STYLE_NECK},
    simmim={'model.backbone.arch': TINY_VIT, 'model.neck.in_channels': 32},
    hpm={'model.backbone.arch': TINY_VIT, **MAE_STYLE_NECK,
         'model.loss_predictor.embed_dims': 16,
         'model.loss_predictor.depth': 1,
         'model.loss_predictor.num_heads': 2},
    sim={'model.backbone.arch': TINY_VIT, 'model.head.in_channels': 32,
         'model.head.embed_dims': 32, 'model.head.num_heads': 2,
         'model.head.projector_depth': 1, 'model.head.predictor_depth': 1},
    itpn={'model.backbone.arch': dict(embed_dims=32, depths=[1, 1, 1],
                                      num_heads=2),
          'model.neck.in_channels': 32, 'model.neck.fpn_dim': 16,
          'model.decoder.fpn_dim': 16, 'model.decoder.embed_dim': 16,
          'model.decoder.depth': 1, 'model.decoder.num_heads': 2},
)


class LossRecorder(Hook):
    priority = 'LOWEST'

    def __init__(self):
        self.losses = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses[runner.iter + 1] = {
            k: float(v) for k, v in outputs.items() if 'loss' in k}


def tiny_config(method, work_dir, max_iters=6):
    cfg = Config.fromfile(str(ROOT / f'configs/demo/{method}_fashion-mnist.py'))
    cfg.merge_from_dict(TINY[method])
    cfg.merge_from_dict({
        'train_dataloader.batch_size': 4,
        # the pipeline draws in a worker seeded by mmengine, as in real runs
        'train_dataloader.num_workers': 1,
        'train_dataloader.persistent_workers': False,
        'train_dataloader.dataset.split': 'test',
        'train_dataloader.dataset.num_samples': 32,
        'train_cfg': dict(type='IterBasedTrainLoop', max_iters=max_iters),
        'default_hooks.logger': dict(type='LoggerHook', interval=1),
        'default_hooks.checkpoint': dict(type='CheckpointHook', interval=3,
                                         by_epoch=False, max_keep_ckpts=-1),
        'randomness': dict(seed=0, deterministic=True),
    })
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks', [])
                        if h['type'] != 'RepresentationEvalHook']
    cfg.work_dir = str(work_dir)
    return cfg


def train(cfg):
    runner = ResilientRunner.from_cfg(cfg)
    recorder = LossRecorder()
    runner.register_hook(recorder)
    runner.train()
    return recorder.losses


@requires_fashion_mnist
@pytest.mark.parametrize('method', sorted(TINY))
def test_resumed_run_repeats_the_uninterrupted_losses(method, tmp_path):
    full = train(tiny_config(method, tmp_path / 'full'))
    assert sorted(full) == [1, 2, 3, 4, 5, 6]
    cfg = tiny_config(method, tmp_path / 'resumed')
    cfg.resume = True
    cfg.load_from = str(tmp_path / 'full' / 'iter_3.pth')
    resumed = train(cfg)
    assert sorted(resumed) == [4, 5, 6]
    for it in (4, 5, 6):
        assert resumed[it] == full[it], f'iteration {it}'


def resume_cfg(cfg, checkpoint):
    cfg.resume = True
    cfg.load_from = str(checkpoint)
    return cfg


@requires_fashion_mnist
@pytest.mark.parametrize('workers', ['none', 'not persistent'])
def test_resume_replaying_across_an_epoch_boundary(workers, tmp_path):
    """8 samples in batches of 4: resuming at iteration 3 replays 3 batches
    across the end of the first epoch, where a new DataLoader iterator draws
    from torch's generator (and, without workers, the pipeline draws in this
    process)."""

    def cfg(work_dir):
        cfg = tiny_config('hpm', work_dir, max_iters=4)
        cfg.merge_from_dict({
            'train_dataloader.dataset.num_samples': 8,
            'train_dataloader.num_workers': 0 if workers == 'none' else 1})
        return cfg

    full = train(cfg(tmp_path / 'full'))
    resumed = train(resume_cfg(cfg(tmp_path / 'resumed'),
                               tmp_path / 'full' / 'iter_3.pth'))
    assert sorted(resumed) == [4]
    assert resumed[4] == full[4]


def _resume_on_two_ranks(rank, root):
    """Per method: each rank's losses of an uninterrupted run and of a run
    resumed at iteration 2."""
    losses = {}
    for method in ('hpm', 'sim'):
        def cfg(name):
            cfg = tiny_config(method, Path(root) / method / name, max_iters=4)
            cfg.default_hooks.checkpoint.interval = 2
            cfg.launcher = 'pytorch'
            # each rank draws its own masks, as in real runs
            cfg.randomness = dict(seed=0, diff_rank_seed=True,
                                  deterministic=True)
            return cfg
        full = train(cfg('full'))
        resumed = train(resume_cfg(
            cfg('resumed'), Path(root) / method / 'full' / 'iter_2.pth'))
        losses[method] = (full, resumed)
    return losses


@requires_fashion_mnist
def test_two_process_resume_is_exact_on_every_rank(tmp_path):
    outcomes = run_ranks(_resume_on_two_ranks, str(tmp_path))
    assert [kind for kind, _ in outcomes] == ['returned'] * 2, outcomes
    results = [value for _, value in outcomes]
    for method in ('hpm', 'sim'):
        # the ranks draw differently (and see different data)
        assert results[0][method][0][3] != results[1][method][0][3]
        for rank, result in enumerate(results):
            full, resumed = result[method]
            assert sorted(resumed) == [3, 4]
            for it in (3, 4):
                assert resumed[it] == full[it], \
                    f'{method}, rank {rank}, iteration {it}'
