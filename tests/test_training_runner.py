"""Foundation: training through mmengine's Runner, full-checkpoint resume on
current torch, two-process CPU training with tools/dist_train.sh, clear errors,
no dataloader worker left behind by a killed trainer."""
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmmim.engine import ResilientRunner
from .conftest import requires_fashion_mnist

ROOT = Path(__file__).resolve().parents[1]

TINY_MAE_CONFIG = """
_base_ = ['{root}/configs/_base_/default_runtime.py']
model = dict(
    type='MAEPretrainer',
    data_preprocessor=dict(type='SelfSupDataPreprocessor',
                           mean=[72.94] * 3, std=[90.02] * 3),
    backbone=dict(type='MaskedViT',
                  arch=dict(embed_dims=32, num_layers=1, num_heads=2,
                            feedforward_channels=64),
                  img_size=16, patch_size=4),
    neck=dict(type='MAEDecoder', num_patches=16, patch_size=4, embed_dim=32,
              decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2),
    head=dict(type='MAEPretrainHead', norm_pix=True, patch_size=4,
              loss=dict(type='PixelReconstructionLoss', criterion='L2')))
train_dataloader = dict(
    batch_size=4, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='FashionMNISTIDX', split='test', img_size=16,
                 num_samples=64,
                 pipeline=[dict(type='RandomFlip', prob=0.5),
                           dict(type='RandomMaskGenerator', input_size=16,
                                patch_size=4, mask_ratio=0.75),
                           dict(type='PackInputs', algorithm_keys=['mask'])]))
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=6, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=6)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', interval=3, by_epoch=False))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0, deterministic=True)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
"""


class LossRecorder(Hook):

    def __init__(self):
        self.losses = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        # runner.iter counts finished iterations: this is iteration iter + 1
        self.losses[runner.iter + 1] = float(outputs["loss"])


def write_tiny_config(tmp_path):
    path = tmp_path / 'tiny_mae.py'
    path.write_text(TINY_MAE_CONFIG.format(root=ROOT))
    return path


def run(cfg):
    runner = Runner.from_cfg(cfg)
    recorder = LossRecorder()
    runner.register_hook(recorder, priority='LOWEST')
    runner.train()
    return runner, recorder.losses


def drop_pipeline_mask(cfg):
    """Let the model draw its masks with torch's generator instead."""
    cfg.train_dataloader.dataset.pipeline = [
        t for t in cfg.train_dataloader.dataset.pipeline
        if t['type'] != 'RandomMaskGenerator']


@requires_fashion_mnist
@pytest.mark.parametrize('mask_source', ['pipeline', 'model'])
def test_train_save_and_resume_full_checkpoint(tmp_path, mask_source):
    cfg_path = write_tiny_config(tmp_path)
    cfg = Config.fromfile(str(cfg_path))
    if mask_source == 'model':
        drop_pipeline_mask(cfg)
    cfg.work_dir = str(tmp_path / 'full')
    _, full = run(cfg)
    assert sorted(full) == [1, 2, 3, 4, 5, 6]
    assert all(torch.isfinite(torch.tensor(v)) for v in full.values())

    ckpt = tmp_path / 'full' / 'iter_3.pth'
    assert ckpt.is_file()
    # a full mmengine checkpoint pickles more than tensors (message hub,
    # numpy values): torch's weights-only unpickler reads it with the
    # allow-list `import mmmim` registers (tests/test_checkpoint_security.py)
    assert 'message_hub' in torch.load(ckpt, weights_only=True)
    cfg = Config.fromfile(str(cfg_path))
    if mask_source == 'model':
        drop_pipeline_mask(cfg)
    cfg.work_dir = str(tmp_path / 'resumed')
    cfg.resume = True
    cfg.load_from = str(ckpt)
    runner, resumed = run(cfg)
    assert sorted(resumed) == [4, 5, 6]  # the iteration counter was restored
    assert runner.iter == 6
    for it in (4, 5, 6):  # and training continues where it stopped
        assert resumed[it] == full[it]  # exactly


@requires_fashion_mnist
def test_dist_train_two_cpu_processes(tmp_path):
    cfg_path = write_tiny_config(tmp_path)
    work_dir = tmp_path / 'dist'
    env = dict(os.environ, PORT=str(29500 + os.getpid() % 1000))
    proc = subprocess.run(
        ['bash', str(ROOT / 'tools' / 'dist_train.sh'), str(cfg_path), '2',
         '--work-dir', str(work_dir), '--cfg-options',
         'train_cfg.max_iters=2', 'default_hooks.checkpoint.interval=2'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-8000:]
    assert 'Distributed launcher: pytorch' in log or 'world_size: 2' in log \
        or "'world_size': 2" in log or 'world size: 2' in log.lower(), \
        log[-3000:]
    assert (work_dir / 'iter_2.pth').is_file()


def test_bad_config_path_names_it(tmp_path):
    missing = tmp_path / 'nope.py'
    proc = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'train.py'), str(missing)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert f'Config file not found: {missing}' in proc.stderr


def test_unknown_component_names_it(tmp_path):
    cfg = Config.fromfile(str(write_tiny_config(tmp_path)))
    cfg.model.backbone.type = 'NoSuchBackbone'
    cfg.work_dir = str(tmp_path / 'bad')
    with pytest.raises(KeyError, match='NoSuchBackbone'):
        Runner.from_cfg(cfg).train()


def _children(pid):
    found = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(')', 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid):
    """Running (a zombie, or a reused pid with another parent, is not)."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


class KillTrainerAtFirstIteration(Hook):
    """Records the dataloader workers, then kill -9 of the trainer."""

    def __init__(self, pid_file):
        self.pid_file = pid_file

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        time.sleep(1)  # the workers prefetch into their result pipe
        with open(self.pid_file, 'w') as f:
            f.write(' '.join(map(str, _children(os.getpid()))))
        os.kill(os.getpid(), signal.SIGKILL)


def _train_until_killed(work_dir, pid_file):
    torch.set_num_threads(1)
    cfg = Config.fromfile(str(write_tiny_config(Path(work_dir))))
    # batches of 128 masks pickle to ~80 KiB: more than a pipe holds
    cfg.merge_from_dict({'train_dataloader.batch_size': 128,
                         'train_dataloader.num_workers': 2,
                         'train_dataloader.persistent_workers': False,
                         'train_dataloader.dataset.num_samples': 1024})
    cfg.work_dir = work_dir
    runner = ResilientRunner.from_cfg(cfg)
    runner.register_hook(KillTrainerAtFirstIteration(pid_file))
    runner.train()


@requires_fashion_mnist
def test_no_dataloader_worker_outlives_a_killed_trainer(tmp_path):
    pid_file = tmp_path / 'workers'
    trainer = mp.get_context('fork').Process(
        target=_train_until_killed, args=(str(tmp_path), str(pid_file)))
    trainer.start()
    trainer.join(timeout=300)
    assert trainer.exitcode == -signal.SIGKILL
    workers = [int(p) for p in pid_file.read_text().split()]
    assert len(workers) == 2
    try:
        deadline = time.time() + 15  # torch's own watchdog polls every 5 s
        while any(map(_alive, workers)) and time.time() < deadline:
            time.sleep(0.2)
        survivors = [pid for pid in workers if _alive(pid)]
        assert not survivors, f'workers {survivors} outlived the trainer'
    finally:
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def load_train_tool():
    spec = importlib.util.spec_from_file_location(
        'mmmim_train_tool', ROOT / 'tools' / 'train.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_missing_data_root_is_one_line_before_any_rank_starts(tmp_path):
    missing = tmp_path / 'no_imagenet'
    env = dict(os.environ, PORT=str(29500 + os.getpid() % 1000))
    proc = subprocess.run(
        ['bash', str(ROOT / 'tools' / 'dist_train.sh'),
         'configs/mae/mae-vit-base_pixel_1600e.py', '2', '--cfg-options',
         f'train_dataloader.dataset.data_root={missing}'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stdout == ''
    assert proc.stderr == (
        f'Data not found: train_dataloader.dataset.data_root: {missing} does '
        f'not exist (from {ROOT}; set it with --cfg-options '
        'train_dataloader.dataset.data_root=...)\n')


@requires_fashion_mnist
@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU path')
def test_amp_on_a_cpu_trains_in_bf16(tmp_path):
    tool = load_train_tool()
    cfg_path = write_tiny_config(tmp_path)
    args = tool.parse_args([str(cfg_path), '--amp', '--work-dir',
                            str(tmp_path / 'amp'), '--cfg-options',
                            'train_cfg.max_iters=1'])
    cfg = tool.merge_args(Config.fromfile(str(cfg_path)), args)
    assert cfg.optim_wrapper.type == 'mmpretrain.AutocastOptimWrapper'
    runner = ResilientRunner.from_cfg(cfg)
    linear = next(m for m in runner.model.backbone.modules()
                  if isinstance(m, torch.nn.Linear))
    dtypes = []
    linear.register_forward_hook(
        lambda module, args, out: dtypes.append(out.dtype))
    runner.train()
    assert dtypes == [torch.bfloat16]  # autocast (LayerNorms stay fp32)


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU path')
@pytest.mark.parametrize('recipe', ['mae/mae-vit-base_pixel_1600e.py',
                                    'simmim/simmim-vit-base_pixel_800e.py',
                                    'sim/sim-vit-base_1600e.py'])
def test_recipes_switch_to_a_plain_optim_wrapper(tmp_path, recipe):
    recipe_wrapper = Config.fromfile(str(ROOT / 'configs' /
                                         recipe)).optim_wrapper
    assert recipe_wrapper.type == 'AmpOptimWrapper'
    cfg = Config.fromfile(str(write_tiny_config(tmp_path)))
    cfg.work_dir = str(tmp_path)
    runner = ResilientRunner.from_cfg(cfg)
    # fp16 needs a GPU: the error says what to do instead
    with pytest.raises(ValueError, match='--amp trains with bf16 autocast'):
        runner.build_optim_wrapper(recipe_wrapper.copy())
    # --cfg-options optim_wrapper.type=OptimWrapper
    wrapper = runner.build_optim_wrapper(
        dict(recipe_wrapper, type='OptimWrapper'))
    assert type(wrapper).__name__ == 'OptimWrapper'
    assert wrapper.optimizer.defaults['lr'] == recipe_wrapper.optimizer.lr
