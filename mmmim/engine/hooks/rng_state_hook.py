"""Carry each rank's random state through checkpoints, for exact resume."""
import random
from typing import List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmpretrain.registry import HOOKS


def capture_rng_state() -> dict:
    """This process's random state: torch's CPU generator (and the current
    CUDA device's), numpy's and Python's, as tensors and plain Python values
    (a checkpoint holding them loads with ``weights_only=True``)."""
    _, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    state = dict(
        torch=torch.get_rng_state(),
        numpy=dict(keys=torch.from_numpy(keys.astype(np.int64)), pos=int(pos),
                   has_gauss=int(has_gauss),
                   cached_gaussian=float(cached_gaussian)),
        python=random.getstate())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: dict) -> None:
    """Set the generators :func:`capture_rng_state` captured (checkpoints of
    earlier versions hold only ``torch`` and every device's ``cuda``)."""
    torch.set_rng_state(state['torch'])
    cuda = state.get('cuda')
    if cuda is not None and torch.cuda.is_available():
        if isinstance(cuda, (list, tuple)):
            if len(cuda) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(cuda)
        else:
            torch.cuda.set_rng_state(cuda)
    if 'numpy' in state:
        np_state = state['numpy']
        np.random.set_state(
            ('MT19937', np_state['keys'].numpy().astype(np.uint32),
             np_state['pos'], np_state['has_gauss'],
             np_state['cached_gaussian']))
    if 'python' in state:
        version, internal, gauss_next = state['python']
        random.setstate((version, tuple(internal), gauss_next))


def gather_rng_states() -> List[dict]:
    """Every rank's :func:`capture_rng_state`, by rank (a collective: call it
    on every rank)."""
    if get_world_size() == 1:
        return [capture_rng_state()]
    return all_gather_object(capture_rng_state())


class _RestoreAfterReplay:
    """Stands in for an iteration-based loop's dataloader iterator while the
    resumed loop replays the batches it has already trained on, and restores
    the random state right before the first new batch is fetched.

    The replay itself draws: each new DataLoader iterator (at every epoch
    boundary with non-persistent workers or ``num_workers=0``) draws its base
    seed from torch's generator, and with ``num_workers=0`` the pipeline draws
    in this process. The uninterrupted run made those draws before the
    checkpoint was saved, so the saved state belongs after the replay.
    """

    def __init__(self, loop, replayed: int, state: dict):
        self._loop = loop
        self._inner = loop.dataloader_iterator
        self._remaining = replayed
        self._state = state

    def __iter__(self):
        return self

    def __next__(self):
        if self._remaining == 0:
            restore_rng_state(self._state)
            self._loop.dataloader_iterator = self._inner  # step aside
        else:
            self._remaining -= 1
        return next(self._inner)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save every rank's random state (torch CPU and CUDA, numpy, Python) in
    the checkpoint and give each rank its own back on resume.

    mmengine restores the model, optimizer, schedulers, iteration and the
    sampler's seed but not the global generators, which MIM models draw on
    during the step (random masks made on the device, the random part of
    HPM's mask, drop path); each rank draws its own (``diff_rank_seed``).
    Without them a resumed run draws different masks than the uninterrupted
    one. The state is restored when the resumed training takes its first
    new batch: after an iteration-based loop has replayed the batches it
    skips (see :class:`_RestoreAfterReplay`), at once for an epoch-based loop
    (which resumes at an epoch boundary).

    Every rank's state is collected by ``ResilientRunner.save_checkpoint``
    (mmengine's ``Runner`` writes checkpoints on rank 0 only, so under it a
    multi-process checkpoint holds rank 0's state alone, and on resume the
    other ranks keep their seeded state, with a warning). The data pipeline's
    draws happen in dataloader workers that mmengine seeds the same way on
    resume, and the resumed loop replays the batches it skips.
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        states = getattr(runner, 'rank_rng_states', None)
        if states is None:
            states = [capture_rng_state()]
        checkpoint['rng_state'] = dict(ranks=states)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        saved = checkpoint.get('rng_state')
        if not saved or not runner._resume:  # only an actual resume
            return
        state = self._state_of_this_rank(saved)
        if state is None:
            return
        loop = runner.train_loop
        replayed = checkpoint.get('meta', {}).get('iter', 0)
        if hasattr(loop, 'dataloader_iterator') and replayed > 0:
            loop.dataloader_iterator = _RestoreAfterReplay(
                loop, replayed, state)
        else:
            restore_rng_state(state)

    @staticmethod
    def _state_of_this_rank(saved: dict) -> Optional[dict]:
        states = saved['ranks'] if 'ranks' in saved else [saved]
        world_size, rank = get_world_size(), get_rank()
        if len(states) == world_size:
            return states[rank]
        print_log(
            f'the checkpoint holds the random state of {len(states)} '
            f'process(es), this run has {world_size}: ranks below '
            f'{len(states)} get theirs, the others keep their seeded state; '
            'random draws after the resume differ from an uninterrupted run',
            logger='current', level=30)
        return states[rank] if rank < len(states) else None
