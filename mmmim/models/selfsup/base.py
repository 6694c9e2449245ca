"""What every mmmim pre-training algorithm shares: where its patch mask comes
from, and what happens to a non-finite loss."""
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.dist import all_reduce, get_rank, get_world_size
from mmengine.logging import MessageHub, print_log

from mmpretrain.models import BaseSelfSupervisor
from ..utils import (masked_per_image, masks_from_data_samples,
                     random_patch_mask, to_device)


class MIMSelfSupervisor(BaseSelfSupervisor):
    """``BaseSelfSupervisor`` with the explicit-mask interface.

    :meth:`get_mask` returns the pipeline's mask (``data_samples[i].mask``)
    when every sample has one, exactly as given, and otherwise a random mask
    with ``mask_ratio`` made on the input's device.

    :meth:`train_step` checks every loss term before the optimiser step: a
    NaN or Inf stops training with a ``FloatingPointError`` naming the
    iteration, the rank(s) and the term, or, with ``nonfinite_loss='skip'``,
    skips the update with a warning and counts the skipped steps (logged as
    ``skipped_steps``; the non-finite terms of a skipped step are not logged,
    so the smoothed loss in the log stays finite). Skipping stops with the
    same error after ``max_consecutive_skipped_steps`` skipped steps in a row
    or ``max_skipped_steps`` in all (the counts are kept in the message hub,
    so they survive a resume). Under DDP (:class:`MIMDistributedDataParallel`,
    which the runner uses) every rank takes the same decision: a NaN on one
    rank stops, or skips the step on, every rank. Only the loss values are
    checked; fp16 loss scaling (``AmpOptimWrapper``) still handles
    overflowing gradients itself.

    Args:
        mask_ratio (float): Ratio of masked patches when the pipeline gives no
            mask.
        nonfinite_loss (str): ``'raise'`` (default) or ``'skip'``.
        max_consecutive_skipped_steps (int | None): With ``'skip'``, stop
            after this many skipped steps in a row. Defaults to 10; None: no
            limit.
        max_skipped_steps (int | None): With ``'skip'``, stop after this many
            skipped steps in all. Defaults to 100; None: no limit.
        compile (bool | dict): Opt-in ``torch.compile`` of the compute
            modules (``compile_modules``: backbone, neck, head and, per
            method, decoders / predictors), in place, with these options
            (``True``: the defaults), at the first training step (after every
            part, and any EMA copy of it, exists), with and without DDP. The
            Python glue around them (masks, data samples, losses dict) stays
            eager, so nothing in the data path has to be traceable, and
            parameter names do not change. mmengine's own ``cfg.compile``
            compiles the whole ``train_step``, data preprocessing included,
            which fails on numpy masks.
    """

    #: submodules compiled by ``compile=...``
    compile_modules = ('backbone', 'neck', 'head')
    #: ``train_step`` takes ``ddp_wrapper`` (``MIMDistributedDataParallel``)
    accepts_ddp_wrapper = True

    def __init__(self, *args, mask_ratio: float = 0.75,
                 nonfinite_loss: str = 'raise',
                 max_consecutive_skipped_steps: Optional[int] = 10,
                 max_skipped_steps: Optional[int] = 100, compile=False,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self._compile_options = (None if not compile else
                                 {} if compile is True else dict(compile))
        if not 0 < mask_ratio < 1:
            raise ValueError(f'mask_ratio must be in (0, 1), got {mask_ratio}')
        if nonfinite_loss not in ('raise', 'skip'):
            raise ValueError("nonfinite_loss must be 'raise' or 'skip', "
                             f'got {nonfinite_loss!r}')
        for name, limit in (('max_consecutive_skipped_steps',
                             max_consecutive_skipped_steps),
                            ('max_skipped_steps', max_skipped_steps)):
            if limit is not None and limit < 1:
                raise ValueError(f'{name} must be >= 1 or None, got {limit}')
        self.mask_ratio = mask_ratio
        self.nonfinite_loss = nonfinite_loss
        self.max_consecutive_skipped_steps = max_consecutive_skipped_steps
        self.max_skipped_steps = max_skipped_steps

    def compile_compute_modules(self) -> None:
        """``torch.compile`` the ``compile_modules`` in place (once)."""
        if self._compile_options is None:
            return
        for name in self.compile_modules:
            module = getattr(self, name, None)
            if isinstance(module, torch.nn.Module):
                module.compile(**self._compile_options)
        self._compile_options = None

    def train_step(self, data, optim_wrapper,
                   ddp_wrapper: Optional[torch.nn.Module] = None
                   ) -> Dict[str, torch.Tensor]:
        """mmengine's ``BaseModel.train_step`` with the opt-in compile and the
        non-finite check.

        Args:
            ddp_wrapper: The DDP module around this model when
                :class:`MIMDistributedDataParallel` calls this step: the
                forward then goes through it, so that its backward averages
                the gradients over the ranks.
        """
        forward_module = self if ddp_wrapper is None else ddp_wrapper
        self.compile_compute_modules()
        with optim_wrapper.optim_context(forward_module):
            data = self.data_preprocessor(data, True)
            losses = forward_module._run_forward(data, mode='loss')
        parsed_losses, log_vars = self.parse_losses(losses)
        bad_terms = nonfinite_terms(log_vars)
        # every rank learns which ranks went non-finite, so all of them
        # step, skip or stop together (DDP's backward is collective)
        bad_ranks = ranks_with_flag(bool(bad_terms), parsed_losses.device)
        hub = MessageHub.get_current_instance()
        if not bad_ranks:
            optim_wrapper.update_params(parsed_losses)
            if self.nonfinite_loss == 'skip':
                if hub.get_info('consecutive_skipped_steps', 0):
                    hub.update_info('consecutive_skipped_steps', 0)
                log_vars['skipped_steps'] = torch.tensor(
                    float(hub.get_info('skipped_steps', 0)))
            return log_vars

        message = nonfinite_message(hub.get_info('iter'), bad_ranks,
                                    bad_terms)
        if self.nonfinite_loss == 'raise':
            raise FloatingPointError(
                message + " (set model.nonfinite_loss='skip' to skip such "
                'steps instead)')
        skipped = hub.get_info('skipped_steps', 0) + 1
        in_a_row = hub.get_info('consecutive_skipped_steps', 0) + 1
        hub.update_info('skipped_steps', skipped)
        hub.update_info('consecutive_skipped_steps', in_a_row)
        for count, how, name, limit in (
                (in_a_row, 'in a row', 'max_consecutive_skipped_steps',
                 self.max_consecutive_skipped_steps),
                (skipped, 'in all', 'max_skipped_steps',
                 self.max_skipped_steps)):
            if limit is not None and count >= limit:
                raise FloatingPointError(
                    f'{message}; {count} steps skipped {how}, the limit '
                    f'(model.{name}={limit}): training stops')
        print_log(f'{message}; optimiser step skipped ({skipped} skipped so '
                  f'far, {in_a_row} in a row)', logger='current', level=30)
        optim_wrapper.zero_grad()
        # keep NaN out of the logged (smoothed) losses
        log_vars = {k: v for k, v in log_vars.items() if k not in bad_terms}
        log_vars['skipped_steps'] = torch.tensor(float(skipped))
        return log_vars

    @property
    def num_patches(self) -> int:
        h, w = self.backbone.patch_resolution
        return h * w

    def get_mask(self, inputs: torch.Tensor,
                 data_samples: Optional[List]) -> torch.Tensor:
        """(B, L) bool patch mask, 1 = masked, on the input's device."""
        return self.get_mask_and_count(inputs, data_samples)[0]

    def get_mask_and_count(self, inputs: torch.Tensor,
                           data_samples: Optional[List]
                           ) -> Tuple[torch.Tensor, Optional[int]]:
        """The mask of :meth:`get_mask` and its number of masked patches per
        image, known on the host: counted in the pipeline's masks (host
        memory, before the copy to the device) or the random mask's
        ``L - int(L (1 - mask_ratio))``. Passing the count on spares the
        device-to-host read that finding it in a device tensor would be.
        None when the pipeline's masks differ in count (fine where every
        patch is kept; dropping patches then fails, naming the counts)."""
        return self._mask_and_count(inputs, data_samples, self.num_patches)

    def _mask_and_count(self, inputs: torch.Tensor,
                        data_samples: Optional[List],
                        num_patches: int) -> Tuple[torch.Tensor, Optional[int]]:
        mask = masks_from_data_samples(data_samples)
        if mask is None:
            mask = random_patch_mask(inputs.shape[0], num_patches,
                                     self.mask_ratio, device=inputs.device)
            return mask, num_patches - int(num_patches *
                                           (1 - self.mask_ratio))
        if mask.shape[1] != num_patches:
            raise ValueError(
                f'the pipeline mask has {mask.shape[1]} patches, the model '
                f'expects {num_patches}: check the MaskGenerator\'s '
                'input_size / patch_size against the model')
        # counted in host memory (pipeline masks are), before the copy
        count = masked_per_image(
            mask.numpy() if mask.device.type == 'cpu' else mask, strict=False)
        return to_device(mask, inputs.device), count

    def reconstruct(self, inputs: torch.Tensor,
                    mask: torch.Tensor) -> torch.Tensor:
        """The model's reconstruction (B, C, H, W) of normalised ``inputs``
        under ``mask``, de-normalised per patch where the target was
        (``norm_pix``); used by the reconstruction pictures."""
        raise NotImplementedError(
            f'{type(self).__name__} does not reconstruct pixels')

    def extract_feat(self, inputs: torch.Tensor):
        """Dense features of the unmasked encoder (tuple of NCHW maps)."""
        return self.backbone(inputs)


def ranks_with_flag(flag: bool, device) -> List[int]:
    """The ranks whose ``flag`` is set (all-reduced when distributed)."""
    world_size = get_world_size()
    if world_size == 1:
        return [0] if flag else []
    flags = torch.zeros(world_size, device=device)
    flags[get_rank()] = float(flag)
    all_reduce(flags)
    return [rank for rank, f in enumerate(flags.tolist()) if f]


def nonfinite_message(iteration: Optional[int], bad_ranks: List[int],
                      bad_terms: Dict[str, float]) -> str:
    """'non-finite loss at iteration 42[ on rank 1 of 2]: loss=nan'."""
    where = (f'iteration {iteration + 1}'
             if iteration is not None else 'this step')
    world_size = get_world_size()
    if world_size > 1:
        where += (f' on rank{"s" if len(bad_ranks) > 1 else ""} '
                  f'{", ".join(map(str, bad_ranks))} of {world_size}')
    terms = ', '.join(f'{name}={value}' for name, value in bad_terms.items())
    if not terms:
        terms = f'finite on this rank ({get_rank()})'
    return f'non-finite loss at {where}: {terms}'


def nonfinite_terms(log_vars: Dict[str, torch.Tensor]) -> Dict[str, float]:
    """The loss terms (names with 'loss', as mmengine sums them) that are NaN
    or Inf, by name; one host sync in all."""
    names = [k for k, v in log_vars.items()
             if 'loss' in k and torch.is_tensor(v)]
    if not names:
        return {}
    values = torch.stack([log_vars[k].detach().float().reshape(()) for k in names])
    if bool(torch.isfinite(values).all()):
        return {}
    return {k: float(v) for k, v in zip(names, values.tolist())
            if not torch.isfinite(torch.tensor(v))}
