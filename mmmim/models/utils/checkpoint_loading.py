"""Loading pre-trained weights into downstream models, never silently.

``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')`` on a
module goes through mmengine's ``PretrainedInit``, which loads with
``strict=False``: a wrong prefix, a renamed parameter or a different width
gives a half-loaded (or not at all loaded) model and one easily missed
warning. For mmmim modules (every class defined in the ``mmmim`` package,
or any module with ``checked_pretrained_loading = True``) this file replaces
that step by :func:`load_pretrained_checked`, which

- adapts the checkpoint to the module: absolute position embeddings and
  relative position bias tables are interpolated to the module's grid, a
  shared relative position table (SimMIM / BEiT) is copied into every block
  that has its own, stale ``relative_position_index`` buffers are dropped
  (and never counted as missing: modules compute them);
- loads with ``strict=False`` and logs **every** missing, unexpected and
  shape-mismatched key (WARNING) plus a one-line summary (INFO);
- raises ``RuntimeError`` when nothing of the module was loaded (and, with
  ``strict_missing=True``, when anything is missing);
- stores the report on the module as ``module.pretrained_load_report``.

Nothing changes for modules of other packages. The patch is installed when
``mmmim`` is imported (:func:`patch_pretrained_init`, idempotent). Modules
that want to call it directly (e.g. from their own ``init_weights``) use
:func:`load_pretrained_checked` or :func:`adapt_state_dict`.
"""
import logging
import math
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model.weight_init import PretrainedInit, update_init_info
from mmengine.runner.checkpoint import CheckpointLoader


@dataclass
class LoadReport:
    """What a checked load did (all names relative to the module)."""
    loaded: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[Tuple[str, tuple, tuple]] = field(default_factory=list)
    adapted: List[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f'{len(self.loaded)} loaded, {len(self.missing)} missing, '
                f'{len(self.unexpected)} unexpected, {len(self.mismatched)} '
                f'shape-mismatched, {len(self.adapted)} interpolated/copied')


def _square(n: int) -> Optional[int]:
    s = int(round(math.sqrt(n)))
    return s if s * s == n else None


def _owner(module: nn.Module, key: str) -> Optional[nn.Module]:
    path = key.rsplit('.', 1)[0] if '.' in key else ''
    try:
        return module.get_submodule(path) if path else module
    except AttributeError:
        return None


def _grid_of(owner: Optional[nn.Module], num_tokens: int,
             num_extra: int) -> Optional[Tuple[int, int]]:
    """The (h, w) token grid a pos-embed table of the owner is laid out on."""
    for attr in ('patch_resolution', 'patches_resolution', 'grid_size'):
        res = getattr(owner, attr, None) if owner is not None else None
        if res is not None and len(tuple(res)) == 2:
            h, w = tuple(res)
            if h * w + num_extra == num_tokens:
                return int(h), int(w)
    s = _square(num_tokens - num_extra)
    return (s, s) if s else None


def resize_abs_pos_embed(src: torch.Tensor, dst_shape: torch.Size,
                         owner: Optional[nn.Module] = None,
                         mode: str = 'bicubic') -> Optional[torch.Tensor]:
    """Interpolate a (1, extra + h*w, C) position table to ``dst_shape``.

    The number of extra (cls / distillation) rows is taken from the owner's
    ``num_extra_tokens`` when it has one, else guessed as the smallest count
    (0-2) for which both tables are square grids. Returns None when the
    shapes cannot be reconciled.
    """
    if src.ndim != 3 or len(dst_shape) != 3 or src.shape[-1] != dst_shape[-1]:
        return None
    candidates = [getattr(owner, 'num_extra_tokens', None)]
    candidates = [c for c in candidates if c is not None] or [0, 1, 2]
    for extra in candidates:
        dst_hw = _grid_of(owner, dst_shape[1], extra)
        src_side = _square(src.shape[1] - extra)
        if dst_hw is None or src_side is None:
            continue
        grid = src[:, extra:].reshape(1, src_side, src_side, -1)
        grid = F.interpolate(
            grid.permute(0, 3, 1, 2).float(), size=dst_hw, mode=mode,
            align_corners=False)
        grid = grid.permute(0, 2, 3, 1).flatten(1, 2).to(src.dtype)
        return torch.cat([src[:, :extra], grid], dim=1)
    return None


def resize_rel_pos_table(src: torch.Tensor,
                         dst_shape: torch.Size) -> Optional[torch.Tensor]:
    """Interpolate a ((2h-1)*(2w-1) [+ 3], heads) relative position table.

    The 3 extra BEiT rows (cls-to-token, token-to-cls, cls-to-cls) are kept.
    """
    if src.ndim != 2 or len(dst_shape) != 2 or src.shape[1] != dst_shape[1]:
        return None
    for extra in (0, 3):
        s_side = _square(src.shape[0] - extra)
        d_side = _square(dst_shape[0] - extra)
        if s_side and d_side:
            heads = src.shape[1]
            table = src[:src.shape[0] - extra].T.reshape(
                1, heads, s_side, s_side)
            table = F.interpolate(
                table.float(), size=(d_side, d_side), mode='bicubic',
                align_corners=False)
            table = table.reshape(heads, -1).T.to(src.dtype)
            return torch.cat([table, src[src.shape[0] - extra:]], dim=0)
    return None


def adapt_state_dict(module: nn.Module,
                     state_dict: Dict[str, torch.Tensor],
                     report: Optional[LoadReport] = None
                     ) -> Dict[str, torch.Tensor]:
    """Make ``state_dict`` fit ``module``'s shapes where that is meaningful.

    - ``*pos_embed`` (1, N, C): interpolated to the module's grid.
    - ``*relative_position_bias_table``: interpolated to the module's size.
    - ``*relative_position_index``: dropped when shapes differ (a buffer the
      module computes itself).
    - a shared ``rel_pos_bias.relative_position_bias_table`` (SimMIM/BEiT
      pre-training) is copied into every block's own table when the module
      has per-block tables and no shared one (and then removed, with its
      index, so it is not reported as unexpected).
    - any other shape mismatch: dropped and recorded in
      ``report.mismatched``.

    Args:
        module (nn.Module): the module the state dict is meant for.
        state_dict (dict): keys relative to ``module``.
        report (LoadReport, optional): filled with what was changed.

    Returns:
        dict: a new state dict.
    """
    report = report if report is not None else LoadReport()
    own = module.state_dict()
    out = dict(state_dict)

    shared_re = r'(^|\.)rel_pos_bias\.relative_position_bias_table$'
    shared = [k for k in out if re.search(shared_re, k)]
    for key in shared:
        if key in own:
            continue
        per_block = [k for k in own
                     if k.endswith('attn.relative_position_bias_table')
                     and k not in out]
        for dst in per_block:
            out[dst] = out[key].clone()
            report.adapted.append(f'{dst} <- {key}')
        if per_block:
            # consumed: the shared table (and its index) is not unexpected
            del out[key]
            out.pop(key.replace('bias_table', 'index'), None)

    for key in list(out):
        if key not in own or own[key].shape == out[key].shape:
            continue
        src, dst_shape = out[key], own[key].shape
        new = None
        if key.endswith('pos_embed'):
            new = resize_abs_pos_embed(src, dst_shape, _owner(module, key))
        elif key.endswith('relative_position_bias_table'):
            new = resize_rel_pos_table(src, dst_shape)
        elif key.endswith('relative_position_index'):
            del out[key]
            continue
        if new is not None and new.shape == dst_shape:
            out[key] = new
            report.adapted.append(
                f'{key}: {tuple(src.shape)} -> {tuple(dst_shape)}')
        else:
            report.mismatched.append(
                (key, tuple(src.shape), tuple(dst_shape)))
            del out[key]
    return out


def _extract_state_dict(checkpoint: dict) -> Dict[str, torch.Tensor]:
    for k in ('state_dict', 'model', 'module'):
        if isinstance(checkpoint, dict) and isinstance(
                checkpoint.get(k), dict):
            checkpoint = checkpoint[k]
            break
    return {(k[7:] if k.startswith('module.') else k): v
            for k, v in checkpoint.items()}


def load_pretrained_checked(module: nn.Module,
                            checkpoint,
                            prefix: Optional[str] = None,
                            map_location: str = 'cpu',
                            strict_missing: bool = False,
                            min_loaded_fraction: float = 0.5,
                            logger='current') -> LoadReport:
    """Load (part of) a checkpoint into ``module`` and report every key.

    Args:
        module (nn.Module): the module to load into.
        checkpoint (str | dict): a path/URL (any mmengine scheme) or an
            already loaded checkpoint / state dict.
        prefix (str, optional): only keys starting with it are used, with it
            stripped (e.g. ``'backbone.'``, ``'neck.'``).
        map_location (str): as in ``torch.load``.
        strict_missing (bool): raise when any module key is missing.
        min_loaded_fraction (float): raise when the loaded tensors hold
            less than this fraction of the module's parameter elements
            (a wrong prefix that happens to match a norm layer).
            Defaults to 0.5.
        logger: mmengine logger (name) for the report.

    Returns:
        LoadReport: also stored as ``module.pretrained_load_report``.

    Raises:
        KeyError: no checkpoint key starts with ``prefix``.
        RuntimeError: nothing (or less than ``min_loaded_fraction``) of
            the module was loaded, or ``strict_missing`` and something is
            missing.
    """
    name = type(module).__name__
    source = checkpoint if isinstance(checkpoint, str) else '<dict>'
    if isinstance(checkpoint, str):
        checkpoint = CheckpointLoader.load_checkpoint(
            checkpoint, map_location=map_location, logger=logger)
    state_dict = _extract_state_dict(checkpoint)
    if prefix:
        sub = {k[len(prefix):]: v for k, v in state_dict.items()
               if k.startswith(prefix)}
        if not sub:
            heads = sorted({k.split('.', 1)[0] + '.' for k in state_dict})
            raise KeyError(f'{name}: no key of {source} starts with '
                           f'{prefix!r}; top-level prefixes are {heads}')
        state_dict = sub

    report = LoadReport()
    state_dict = adapt_state_dict(module, state_dict, report)
    result = module.load_state_dict(state_dict, strict=False)
    # relative_position_index buffers are computed by the module itself
    report.missing = [k for k in result.missing_keys
                      if not k.endswith('relative_position_index')]
    report.unexpected = list(result.unexpected_keys)
    own = set(module.state_dict())
    report.loaded = [k for k in state_dict if k in own]

    where = f'{name} from {source}' + (f' (prefix {prefix!r})' if prefix
                                       else '')
    lines = []
    if report.missing:
        lines.append(f'missing keys ({len(report.missing)}, left at their '
                     'initialisation):\n  ' + '\n  '.join(report.missing))
    if report.unexpected:
        lines.append(f'unexpected keys ({len(report.unexpected)}, ignored):'
                     '\n  ' + '\n  '.join(report.unexpected))
    if report.mismatched:
        lines.append('shape-mismatched keys (not loaded):\n  ' + '\n  '.join(
            f'{k}: checkpoint {s} vs model {d}'
            for k, s, d in report.mismatched))
    if lines:
        print_log(f'loading {where}:\n' + '\n'.join(lines), logger=logger,
                  level=logging.WARNING)
    if report.adapted:
        print_log(f'loading {where}: adapted\n  ' +
                  '\n  '.join(report.adapted), logger=logger)
    print_log(f'loaded {where}: {report.summary()}', logger=logger)
    module.pretrained_load_report = report

    if not report.loaded:
        raise RuntimeError(
            f'{where}: nothing was loaded ({report.summary()}); check the '
            'checkpoint and the prefix. Model keys look like '
            f'{sorted(own)[:5]}, checkpoint keys like '
            f'{sorted(state_dict)[:5]}')
    own_params = dict(module.named_parameters())
    total = sum(v.numel() for v in own_params.values())
    got = sum(own_params[k].numel() for k in report.loaded
              if k in own_params)
    if total and got < min_loaded_fraction * total:
        raise RuntimeError(
            f'{where}: loaded only {got} of {total} values '
            f'({report.summary()}); check the checkpoint and the prefix')
    if strict_missing and (report.missing or report.mismatched):
        raise RuntimeError(f'{where}: {report.summary()}')
    return report


def is_checked_module(module: nn.Module) -> bool:
    """Modules whose ``Pretrained`` init goes through the checked loader."""
    return bool(getattr(module, 'checked_pretrained_loading', False)) or \
        type(module).__module__.split('.')[0] == 'mmmim'


_ORIGINAL_CALL = PretrainedInit.__call__


def _checked_call(self, module):
    if not is_checked_module(module):
        return _ORIGINAL_CALL(self, module)
    load_pretrained_checked(
        module, self.checkpoint, prefix=self.prefix,
        map_location=self.map_location)
    if hasattr(module, '_params_init_info'):
        update_init_info(module, init_info=self._get_init_info())


def patch_pretrained_init() -> None:
    """Route mmengine's ``Pretrained`` init of mmmim modules through
    :func:`load_pretrained_checked` (idempotent; other modules unchanged)."""
    PretrainedInit.__call__ = _checked_call


patch_pretrained_init()
