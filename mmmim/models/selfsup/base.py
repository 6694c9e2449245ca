"""What every mmmim pre-training algorithm shares: where its patch mask comes
from, and what happens to a non-finite loss."""
from typing import Dict, List, Optional

import torch
from mmengine.logging import MessageHub, print_log

from mmpretrain.models import BaseSelfSupervisor
from ..utils import masks_from_data_samples, random_patch_mask


class MIMSelfSupervisor(BaseSelfSupervisor):
    """``BaseSelfSupervisor`` with the explicit-mask interface.

    :meth:`get_mask` returns the pipeline's mask (``data_samples[i].mask``)
    when every sample has one, exactly as given, and otherwise a random mask
    with ``mask_ratio`` made on the input's device.

    :meth:`train_step` checks every loss term before the optimiser step: a
    NaN or Inf stops training with an error naming the iteration and the
    term, or, with ``nonfinite_loss='skip'``, skips the update with a warning
    and counts the skipped steps (logged as ``skipped_steps``). Only the loss
    values are checked; fp16 loss scaling (``AmpOptimWrapper``) still handles
    overflowing gradients itself.

    Args:
        mask_ratio (float): Ratio of masked patches when the pipeline gives no
            mask.
        nonfinite_loss (str): ``'raise'`` (default) or ``'skip'``.
        compile (bool | dict): Opt-in ``torch.compile`` of the compute
            modules (``compile_modules``: backbone, neck, head and, per
            method, decoders / predictors), in place, with these options
            (``True``: the defaults), at the first training step (after every
            part, and any EMA copy of it, exists). The Python glue around them
            (masks, data samples, losses dict) stays eager, so nothing in the
            data path has to be traceable, and parameter names do not change.
            mmengine's own ``cfg.compile`` compiles the whole ``train_step``,
            data preprocessing included, which fails on numpy masks.
    """

    #: submodules compiled by ``compile=...``
    compile_modules = ('backbone', 'neck', 'head')

    def __init__(self, *args, mask_ratio: float = 0.75,
                 nonfinite_loss: str = 'raise', compile=False, **kwargs):
        super().__init__(*args, **kwargs)
        self._compile_options = (None if not compile else
                                 {} if compile is True else dict(compile))
        if not 0 < mask_ratio < 1:
            raise ValueError(f'mask_ratio must be in (0, 1), got {mask_ratio}')
        if nonfinite_loss not in ('raise', 'skip'):
            raise ValueError("nonfinite_loss must be 'raise' or 'skip', "
                             f'got {nonfinite_loss!r}')
        self.mask_ratio = mask_ratio
        self.nonfinite_loss = nonfinite_loss
        self.num_skipped_steps = 0

    def compile_compute_modules(self) -> None:
        """``torch.compile`` the ``compile_modules`` in place (once)."""
        if self._compile_options is None:
            return
        for name in self.compile_modules:
            module = getattr(self, name, None)
            if isinstance(module, torch.nn.Module):
                module.compile(**self._compile_options)
        self._compile_options = None

    def train_step(self, data, optim_wrapper) -> Dict[str, torch.Tensor]:
        """mmengine's ``BaseModel.train_step`` with the non-finite check."""
        self.compile_compute_modules()
        with optim_wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            losses = self._run_forward(data, mode='loss')
        parsed_losses, log_vars = self.parse_losses(losses)
        bad_terms = nonfinite_terms(log_vars)
        if bad_terms:
            iteration = MessageHub.get_current_instance().get_info('iter')
            where = (f'iteration {iteration + 1}'
                     if iteration is not None else 'this step')
            message = (f'non-finite loss at {where}: ' + ', '.join(
                f'{name}={value}' for name, value in bad_terms.items()))
            if self.nonfinite_loss == 'raise':
                raise FloatingPointError(
                    message + " (set model.nonfinite_loss='skip' to skip "
                    'such steps instead)')
            self.num_skipped_steps += 1
            print_log(f'{message}; optimiser step skipped '
                      f'({self.num_skipped_steps} skipped so far)',
                      logger='current', level=30)
            optim_wrapper.zero_grad()
        else:
            optim_wrapper.update_params(parsed_losses)
        if self.nonfinite_loss == 'skip':
            log_vars['skipped_steps'] = torch.tensor(
                float(self.num_skipped_steps))
        return log_vars

    @property
    def num_patches(self) -> int:
        h, w = self.backbone.patch_resolution
        return h * w

    def get_mask(self, inputs: torch.Tensor,
                 data_samples: Optional[List]) -> torch.Tensor:
        """(B, L) bool patch mask, 1 = masked."""
        mask = masks_from_data_samples(data_samples)
        if mask is None:
            return random_patch_mask(inputs.shape[0], self.num_patches,
                                     self.mask_ratio, device=inputs.device)
        if mask.shape[1] != self.num_patches:
            raise ValueError(
                f'the pipeline mask has {mask.shape[1]} patches, the model '
                f'expects {self.num_patches}: check the MaskGenerator\'s '
                'input_size / patch_size against the model')
        return mask.to(inputs.device)

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
