"""Carry torch's random state through checkpoints, for exact resume."""
import torch
from mmengine.hooks import Hook

from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save torch's (CPU and CUDA) random state in every checkpoint and
    restore it on resume.

    mmengine restores the model, optimizer, schedulers, iteration and the
    sampler's seed but not the global torch generator, which MIM models draw
    on during the step (random masks made on the device, the random part of
    HPM's mask, drop path). Without it a resumed run draws different masks
    than the uninterrupted one. The data pipeline's draws are not its
    business: they happen in dataloader workers that mmengine seeds the same
    way on resume, and the resumed loop replays the batches it skips.
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = dict(torch=torch.get_rng_state())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint['rng_state'] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('rng_state')
        if not state or not runner._resume:  # only an actual resume
            return
        torch.set_rng_state(state['torch'])
        cuda_states = state.get('cuda')
        if cuda_states and torch.cuda.is_available() and \
                len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
