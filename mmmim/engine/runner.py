"""mmengine's Runner, hardened for long multi-process runs."""
import ctypes
import os
import os.path as osp
import re
import signal
import sys
from functools import partial

import torch
from mmengine.device import get_device
from mmengine.dist import broadcast_object_list, is_main_process
from mmengine.fileio import get_file_backend
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.model import MMDistributedDataParallel, is_model_wrapper
from mmengine.optim import AmpOptimWrapper
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint_to_model
from torch.utils.data import DataLoader

from mmpretrain.registry import RUNNERS
from ..utils.checkpoint import load_checkpoint_file
from .hooks.checkpoint_hook import AtomicCheckpointHook
from .hooks.rng_state_hook import RNGStateHook, gather_rng_states
from .resume import checkpoint_damage, find_resumable_checkpoint

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(parent_pid: int, worker_init_fn, worker_id: int):
    """DataLoader worker init: the kernel kills this worker when the trainer
    dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), then the usual init.

    torch's workers notice a dead trainer themselves (every 5 s), but then
    wait at exit for their result queue to flush into a pipe nobody reads
    (its read end is held open by the workers themselves): with batches
    larger than the pipe (64 KiB pickled, e.g. numpy masks) they hang forever.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the trainer died before the prctl
        os._exit(1)
    if worker_init_fn is not None:
        worker_init_fn(worker_id)


@RUNNERS.register_module()
class ResilientRunner(Runner):
    """``Runner`` for days-long, multi-process pre-training.
    ``tools/train.py`` uses it for every config (mmpretrain, mmdet, mmseg);
    ``runner_type='ResilientRunner'`` selects it in mmpretrain-scoped
    configs started otherwise. Compared with mmengine's ``Runner``:

    - **DDP** wraps the model in :class:`MIMDistributedDataParallel`, which
      runs mmmim's ``train_step`` (non-finite loss check, opt-in compile)
      under DDP too (on a machine without a GPU: DDP over CPU modules, gloo).
    - **Saves are atomic**: a checkpoint is written under a temporary name
      and renamed when complete; ``CheckpointHook`` becomes
      :class:`AtomicCheckpointHook` (outdated checkpoints are removed after
      the new one is complete; ``last_checkpoint`` is relative to the work
      dir). Every rank's random state goes into the checkpoint
      (:class:`RNGStateHook`).
    - **Resume is verified**: ``resume=True`` without a path takes the
      newest *intact* checkpoint of the work dir, logging what it skipped
      and why, and says plainly when there is none (training then starts
      from the beginning, as a first launch of a restartable job should). An
      explicit checkpoint that is damaged stops with an error naming it.
    - **Checkpoints never run code**: ``load_from`` and resume read with
      ``mmmim.utils.checkpoint.load_checkpoint_file`` (weights-only, the
      allow-list; a refusal names the file and the opt-ins).
    - **load_from / resume must fit the model**: when the checkpoint holds a
      same-shaped tensor for less than ``min_loaded_fraction`` (config key,
      default 0.5) of the model's parameter values, loading fails naming
      both sides' keys, instead of training on from random init; set it to
      0 to load any checkpoint.
    - **Dataloader workers die with the trainer** (Linux), instead of
      hanging when it is killed.
    - **Optimizer wrappers**: AMP-only keys (``loss_scale``) are dropped, with
      a note, for wrappers that are not ``AmpOptimWrapper``, so a recipe can
      switch to ``OptimWrapper`` with one override; ``AmpOptimWrapper``
      (fp16) on a machine without a GPU fails naming the alternatives.
    """

    #: every rank's random state while a checkpoint is being saved
    rank_rng_states = None

    # -- model -------------------------------------------------------------
    def wrap_model(self, model_wrapper_cfg, model):
        if self.distributed and not is_model_wrapper(model):
            wrapper_cfg = dict(model_wrapper_cfg or {})
            if wrapper_cfg.get('type', 'MMDistributedDataParallel') in (
                    'MMDistributedDataParallel', MMDistributedDataParallel):
                wrapper_cfg['type'] = 'mmpretrain.MIMDistributedDataParallel'
                wrapper_cfg.setdefault('broadcast_buffers', False)
                wrapper_cfg.setdefault(
                    'find_unused_parameters',
                    self.cfg.get('find_unused_parameters', False))
                if get_device() == 'cpu':  # DDP over CPU modules (gloo)
                    wrapper_cfg.setdefault('device_ids', None)
                model_wrapper_cfg = wrapper_cfg
        return super().wrap_model(model_wrapper_cfg, model)

    # -- data --------------------------------------------------------------
    @staticmethod
    def build_dataloader(dataloader, seed=None, diff_rank_seed=False):
        loader = Runner.build_dataloader(
            dataloader, seed=seed, diff_rank_seed=diff_rank_seed)
        if (isinstance(loader, DataLoader) and loader.num_workers > 0
                and sys.platform.startswith('linux')):
            loader.worker_init_fn = partial(_die_with_parent, os.getpid(),
                                            loader.worker_init_fn)
        return loader

    # -- optimizer ---------------------------------------------------------
    def build_optim_wrapper(self, optim_wrapper):
        if isinstance(optim_wrapper, dict) and 'optimizer' in optim_wrapper:
            wrapper_type = optim_wrapper.get('type', 'OptimWrapper')
            if isinstance(wrapper_type, str):
                with MMENGINE_OPTIM_WRAPPERS.switch_scope_and_registry(
                        None) as registry:
                    wrapper_type = registry.get(wrapper_type)
            is_amp = isinstance(wrapper_type, type) and issubclass(
                wrapper_type, AmpOptimWrapper)
            if is_amp and get_device() == 'cpu':
                raise ValueError(
                    'AmpOptimWrapper (fp16 with loss scaling) needs a GPU. On '
                    'a CPU: tools/train.py --amp trains with bf16 autocast, '
                    '--cfg-options optim_wrapper.type=OptimWrapper in fp32')
            if not is_amp and 'loss_scale' in optim_wrapper:
                optim_wrapper = {k: v for k, v in optim_wrapper.items()
                                 if k != 'loss_scale'}
                self.logger.info(
                    'optim_wrapper: loss_scale ignored (only AmpOptimWrapper '
                    'scales the loss)')
        return super().build_optim_wrapper(optim_wrapper)

    # -- hooks -------------------------------------------------------------
    def register_hook(self, hook, priority=None):
        if isinstance(hook, dict) and hook.get('type') in (
                'CheckpointHook', CheckpointHook):
            hook = dict(hook, type=AtomicCheckpointHook)
        super().register_hook(hook, priority)

    # -- saving ------------------------------------------------------------
    def save_checkpoint(self, out_dir, filename, file_client_args=None,
                        *args, backend_args=None, **kwargs):
        """mmengine's save (rank 0 writes), written under a temporary name
        and renamed when complete; called on every rank, which all hand
        their random state to :class:`RNGStateHook` first."""
        if any(isinstance(h, RNGStateHook) for h in self.hooks):
            self.rank_rng_states = gather_rng_states()  # a collective
        try:
            if not is_main_process():
                return
            local = (file_client_args is None and isinstance(
                get_file_backend(out_dir, backend_args=backend_args),
                LocalBackend))
            if not local:
                return super().save_checkpoint(
                    out_dir, filename, file_client_args, *args,
                    backend_args=backend_args, **kwargs)
            final = osp.join(out_dir, filename)
            temporary = f'{filename}.tmp-{os.getpid()}'
            try:
                super().save_checkpoint(out_dir, temporary, None, *args,
                                        backend_args=backend_args, **kwargs)
                with open(osp.join(out_dir, temporary), 'rb') as f:
                    os.fsync(f.fileno())
                os.replace(osp.join(out_dir, temporary), final)
            finally:
                if osp.exists(osp.join(out_dir, temporary)):
                    os.remove(osp.join(out_dir, temporary))
        finally:
            self.rank_rng_states = None

    # -- loading -----------------------------------------------------------
    def load_or_resume(self) -> None:
        if self._has_loaded or not self._resume:
            return super().load_or_resume()
        if self._load_from is not None:  # an explicit checkpoint
            damage = (None if is_remote(self._load_from) else
                      checkpoint_damage(self._load_from))
            if damage is not None:
                raise RuntimeError(
                    f'cannot resume from {self._load_from}: {damage}. '
                    '--resume without a path takes the newest intact '
                    'checkpoint of the work dir')
            return super().load_or_resume()
        # rank 0 verifies (reading every byte once), every rank resumes
        # from what it found
        decision = (list(find_resumable_checkpoint(self.work_dir))
                    if is_main_process() else [None, []])
        broadcast_object_list(decision)
        found, notes = decision
        for note in notes:
            self.logger.warning(f'resume: {note}')
        if found is None:
            self.logger.warning(
                f'resume: no checkpoint to resume from in {self.work_dir} '
                '(no intact last_checkpoint, epoch_*.pth or iter_*.pth): '
                'training starts from the beginning')
            return
        if notes:
            self.logger.warning(f'resume: resuming from the newest intact '
                                f'checkpoint, {found}')
        self.logger.info(f'Auto resumed from the latest checkpoint {found}.')
        self.resume(found)
        self._has_loaded = True

    def load_checkpoint(self, filename, map_location='cpu', strict=False,
                        revise_keys=[(r'^module.', '')]):
        """mmengine's ``load_checkpoint`` (``load_from`` and resume), with
        the file read by mmmim's weights-only loader (a file that needs more
        than the allow-list is refused naming the opt-ins; see
        ``mmmim.utils.checkpoint``) and a checkpoint that fills too little of
        the model refused before it is loaded into it."""
        checkpoint = load_checkpoint_file(filename, map_location=map_location)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(
            self.model) else self.model
        self._check_loaded_enough(filename, checkpoint, model, revise_keys)
        checkpoint = _load_checkpoint_to_model(
            model, checkpoint, strict, revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    def _check_loaded_enough(self, filename, checkpoint, model, revise_keys):
        """Fail when the checkpoint fills less than ``min_loaded_fraction``
        of the model's parameter values (mmengine only prints the
        mismatches and trains on from random init)."""
        min_fraction = self.cfg.get('min_loaded_fraction', 0.5)
        if not min_fraction:
            return
        state_dict = checkpoint.get('state_dict', checkpoint)
        for pattern, replacement in revise_keys:
            state_dict = {re.sub(pattern, replacement, k): v
                          for k, v in state_dict.items()}
        total = loaded = 0
        for name, param in model.named_parameters():
            total += param.numel()
            value = state_dict.get(name)
            if torch.is_tensor(value) and value.shape == param.shape:
                loaded += param.numel()
        if total and loaded < min_fraction * total:
            raise RuntimeError(
                f'{filename} fills {loaded / total:.0%} of the model\'s '
                f'parameter values ({loaded} of {total}; '
                f'min_loaded_fraction={min_fraction}): a checkpoint of '
                'another model? Its keys: '
                f'{_some(state_dict)}; the model\'s: '
                f'{_some(dict(model.named_parameters()))}. Set '
                'min_loaded_fraction=0 in the config to load it anyway')


def _some(named: dict, n: int = 3) -> str:
    keys = list(named)
    return ', '.join(keys[:n]) + (', ...' if len(keys) > n else '')


def is_remote(path: str) -> bool:
    return '://' in str(path)
