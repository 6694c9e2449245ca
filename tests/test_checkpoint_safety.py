"""Checkpoints survive crashes and a resume starts from the right one: saves
are atomic and outdated checkpoints go only after the new one is complete; a
damaged newest checkpoint is skipped; last_checkpoint is relative to the work
dir; no checkpoint to resume is said plainly; load_from of another model
fails instead of training from random init."""
import os
import shutil
import signal

import pytest
import torch
from mmengine.config import Config
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import Hook

from mmmim.engine import ResilientRunner
from .conftest import requires_fashion_mnist
from .test_training_runner import ROOT, TINY_MAE_CONFIG, LossRecorder

pytestmark = requires_fashion_mnist


def tiny_cfg(work_dir, max_iters=4, max_keep_ckpts=-1, **options):
    cfg = Config.fromstring(TINY_MAE_CONFIG.format(root=ROOT), '.py')
    cfg.train_cfg.max_iters = max_iters
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=2, by_epoch=False,
        max_keep_ckpts=max_keep_ckpts)
    cfg.merge_from_dict(options)
    cfg.work_dir = str(work_dir)
    return cfg


def run(cfg, *hooks):
    """(runner, {iteration: loss}, the run's log text)."""
    runner = ResilientRunner.from_cfg(cfg)
    recorder = LossRecorder()
    runner.register_hook(recorder, priority='LOWEST')
    for hook in hooks:
        runner.register_hook(hook)
    runner.train()
    with open(os.path.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        log = f.read()
    return runner, recorder.losses, log


def resumed(work_dir, max_iters=4, **options):
    cfg = tiny_cfg(work_dir, max_iters=max_iters, **options)
    cfg.resume = True
    return run(cfg)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A 4-iteration run with iter_2.pth and iter_4.pth, and its losses."""
    work_dir = tmp_path_factory.mktemp('trained') / 'work_dir'
    cfg = tiny_cfg(work_dir, max_iters=4)
    cfg.experiment_name = 'checkpoint-safety-trained'
    _, losses, _ = run(cfg)
    return work_dir, losses


def copy_of(trained, tmp_path, name='copy'):
    return shutil.copytree(trained[0], tmp_path / name)


# -- saving -----------------------------------------------------------------
def failing_second_write():
    """A LocalBackend.put that writes half the bytes of its 2nd call, then
    fails as a full disk would."""
    calls = []
    put = LocalBackend.put

    def failing_put(backend, obj, filepath):
        calls.append(filepath)
        if len(calls) == 2:
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
            raise OSError(28, 'No space left on device')
        return put(backend, obj, filepath)

    return failing_put


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(LocalBackend, 'put', failing_second_write())
    with pytest.raises(OSError, match='No space left'):
        run(tiny_cfg(tmp_path, max_keep_ckpts=1))
    # no torn file under a checkpoint's name, no temporary one left, and
    # the previous checkpoint still there
    assert [f for f in os.listdir(tmp_path) if '.pth' in f] == ['iter_2.pth']
    monkeypatch.undo()
    _, losses, _ = resumed(tmp_path)
    assert sorted(losses) == [3, 4]


class KillDuringSave(Hook):
    """kill -9 of the trainer in the middle of its 2nd save."""

    priority = 'LOWEST'

    def __init__(self):
        self.saves = 0

    def before_save_checkpoint(self, runner, checkpoint):
        self.saves += 1
        if self.saves == 2:
            os.kill(os.getpid(), signal.SIGKILL)


def _train_and_get_killed(work_dir):
    torch.set_num_threads(1)
    run(tiny_cfg(work_dir, max_keep_ckpts=1), KillDuringSave())


def test_save_killed_midway_leaves_a_resumable_run(trained, tmp_path):
    import torch.multiprocessing as mp
    trainer = mp.get_context('fork').Process(target=_train_and_get_killed,
                                             args=(str(tmp_path), ))
    trainer.start()
    trainer.join(timeout=300)
    assert trainer.exitcode == -signal.SIGKILL
    # what a trainer killed a little later would have left
    stale = tmp_path / f'iter_4.pth.tmp-{trainer.pid}'
    stale.write_bytes(b'PK\x03\x04 half a checkpoint')
    _, losses, log = resumed(tmp_path)
    assert not stale.exists()
    assert f'Auto resumed from the latest checkpoint {tmp_path}/iter_2.pth' \
        in log
    # the killed trainer ran on one thread: equal up to summation order
    assert losses == pytest.approx({it: trained[1][it] for it in (3, 4)},
                                   rel=1e-5)


# -- resuming ---------------------------------------------------------------
def test_truncated_newest_checkpoint_falls_back(trained, tmp_path):
    work_dir = copy_of(trained, tmp_path)
    newest = work_dir / 'iter_4.pth'
    newest.write_bytes(newest.read_bytes()[:newest.stat().st_size // 2])
    _, losses, log = resumed(work_dir)
    assert f'{newest} (named by last_checkpoint): truncated' in log
    assert ('resuming from the newest intact checkpoint, '
            f'{work_dir / "iter_2.pth"}') in log
    assert losses == {it: trained[1][it] for it in (3, 4)}


def test_explicit_damaged_checkpoint_is_named(trained, tmp_path):
    work_dir = copy_of(trained, tmp_path)
    damaged = work_dir / 'iter_2.pth'
    damaged.write_bytes(damaged.read_bytes()[:1000])
    cfg = tiny_cfg(tmp_path / 'new')
    cfg.resume, cfg.load_from = True, str(damaged)
    with pytest.raises(RuntimeError, match=f'cannot resume from {damaged}: '
                       'truncated'):
        run(cfg)


def test_copied_work_dir_resumes_its_own_checkpoint(trained, tmp_path):
    copy = copy_of(trained, tmp_path)
    original = copy_of(trained, tmp_path, 'original')
    # mmengine's absolute last_checkpoint, as a copy of an old run has it
    (original / 'last_checkpoint').write_text(str(original / 'iter_4.pth'))
    shutil.copy(original / 'last_checkpoint', copy / 'last_checkpoint')
    # the original moved on: its iter_4.pth now holds iteration 2
    shutil.copy(original / 'iter_2.pth', original / 'iter_4.pth')
    _, losses, log = resumed(copy, max_iters=6)
    assert sorted(losses) == [5, 6]  # from its own iter_4.pth
    assert (f'last_checkpoint names {original / "iter_4.pth"}, outside this '
            "work dir; using this work dir's iter_4.pth") in log
    _, losses, _ = resumed(original, max_iters=6)
    assert sorted(losses) == [3, 4, 5, 6]
    # what the hook writes now
    assert (copy / 'last_checkpoint').read_text() == 'iter_6.pth'


def test_nothing_to_resume_is_said(tmp_path):
    _, losses, log = resumed(tmp_path / 'mistyped', max_iters=1)
    assert (f'resume: no checkpoint to resume from in {tmp_path / "mistyped"}'
            ' (no intact last_checkpoint, epoch_*.pth or iter_*.pth): '
            'training starts from the beginning') in log
    assert sorted(losses) == [1]


# -- load_from --------------------------------------------------------------
def test_load_from_another_model_fails_unless_allowed(trained, tmp_path):
    from .test_exact_resume import tiny_config
    cfg = tiny_config('itpn', tmp_path / 'itpn', max_iters=1)
    cfg.load_from = str(trained[0] / 'iter_4.pth')
    with pytest.raises(RuntimeError, match=r'iter_4.pth fills 0% of the '
                       r"model's parameter values .* a checkpoint of another "
                       'model?'):
        run(cfg)
    cfg = tiny_config('itpn', tmp_path / 'itpn', max_iters=1)
    cfg.load_from = str(trained[0] / 'iter_4.pth')
    cfg.min_loaded_fraction = 0
    _, losses, _ = run(cfg)
    assert sorted(losses) == [1]
