"""Loading pre-trained weights into mmmim modules, never silently.

mmengine's ``Pretrained`` initialiser (``init_cfg=dict(type='Pretrained',
checkpoint=..., prefix='backbone.')``) loads with ``strict=False``: a wrong
prefix, a renamed parameter or a different width gives a half-loaded (or not
at all loaded) model and one easily missed warning. mmmim's backbones, necks,
heads and HPM's teacher inherit :class:`CheckedLoadingMixin`, which, as
mmpretrain's own backbones do, handles ``Pretrained`` in ``init_weights``:
the module is initialised as it would be without a checkpoint, then
:func:`load_pretrained_checked`

- reads the checkpoint without running code from it
  (:func:`mmmim.utils.checkpoint.load_checkpoint_file`);
- adapts it to the module (:func:`adapt_state_dict`): absolute position
  embeddings and relative position bias tables are interpolated to the
  module's grid, a shared relative position table (SimMIM / BEiT) is copied
  into every block that has its own, stale ``relative_position_index``
  buffers are dropped (and never counted as missing: modules compute them);
- loads with ``strict=False`` and logs **every** missing, unexpected and
  shape-mismatched key (WARNING) plus a one-line summary (INFO);
- raises ``RuntimeError`` when nothing (or too little) of the module was
  loaded and, with ``strict_missing=True``, when anything is missing;
- stores the report on the module as ``module.pretrained_load_report``.

The mixin also adapts the position tables whenever a state dict is loaded
into the module (``load_from``, ``load_state_dict``), before the load-state-
dict pre-hooks of mmpretrain's parent classes run. Modules of other packages
keep mmengine's behaviour; nothing of mmengine is changed.
"""
import logging
import math
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model.weight_init import PretrainedInit, update_init_info
from mmpretrain.models.utils import resize_pos_embed

from mmmim.utils.checkpoint import load_checkpoint_file, unwrap_state_dict
from .position_embedding import resize_rel_pos_bias


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
    s = int(round(math.sqrt(n))) if n > 0 else 0
    return s if s and s * s == n else None


def _owners(module: nn.Module, key: str) -> List[nn.Module]:
    """The module holding ``key`` and its ancestors up to ``module``."""
    parts = key.split('.')[:-1]
    chain = [module]
    for part in parts:
        child = getattr(chain[-1], part, None)
        if not isinstance(child, nn.Module):
            break
        chain.append(child)
    return chain[::-1]


def _grid_of(owners: List[nn.Module], num_cells: int, extra: int,
             table: bool) -> Optional[Tuple[int, int]]:
    """The (h, w) token grid a table of the nearest owner is laid out on.

    Absolute tables hold ``extra + h * w`` rows, relative bias tables
    ``(2h - 1) * (2w - 1) + extra``; without an owner that says its grid,
    a square one is assumed.
    """
    for owner in owners:
        for attr in ('patch_resolution', 'patches_resolution', 'grid_size',
                     'window_size'):
            res = getattr(owner, attr, None)
            if res is None or len(tuple(res)) != 2:
                continue
            h, w = (int(v) for v in res)
            cells = (2 * h - 1) * (2 * w - 1) if table else h * w
            if cells + extra == num_cells:
                return h, w
    side = _square(num_cells - extra)
    if side is None:
        return None
    if not table:
        return side, side
    return ((side + 1) // 2, ) * 2 if side % 2 else None


def resize_abs_pos_embed(src: torch.Tensor, dst_shape: torch.Size,
                         owner: Optional[nn.Module] = None,
                         mode: str = 'bicubic') -> Optional[torch.Tensor]:
    """Interpolate a (1, extra + h*w, C) position table to ``dst_shape``
    (mmpretrain's ``resize_pos_embed``; extra rows kept).

    The number of extra (cls / distillation) rows is taken from the owner's
    ``num_extra_tokens`` when it has one, else guessed as the smallest count
    (0-2) for which both tables are grids. Returns None when the shapes
    cannot be reconciled.
    """
    if src.ndim != 3 or len(dst_shape) != 3 or src.shape[-1] != dst_shape[-1]:
        return None
    owners = [owner] if owner is not None else []
    candidates = [getattr(owner, 'num_extra_tokens', None)]
    candidates = [c for c in candidates if c is not None] or [0, 1, 2]
    for extra in candidates:
        dst_hw = _grid_of(owners, dst_shape[1], extra, table=False)
        src_side = _square(src.shape[1] - extra)
        if dst_hw is None or src_side is None:
            continue
        return resize_pos_embed(src, (src_side, src_side), dst_hw, mode=mode,
                                num_extra_tokens=extra)
    return None


def resize_rel_pos_table(src: torch.Tensor,
                         dst_shape: torch.Size,
                         owners: Optional[List[nn.Module]] = None
                         ) -> Optional[torch.Tensor]:
    """Interpolate a ((2h-1)*(2w-1) [+ 3], heads) relative position table
    from a square grid to ``dst_shape`` (:func:`resize_rel_pos_bias`: timm's
    ``resize_rel_pos_bias_table_simple``, bicubic, the 3 BEiT cls rows kept).

    The destination grid comes from ``owners`` (the modules holding the
    table, nearest first) when one of them says it, else it is square.
    """
    if src.ndim != 2 or len(dst_shape) != 2 or src.shape[1] != dst_shape[1]:
        return None
    for extra in (0, 3):
        src_side = _square(src.shape[0] - extra)
        dst_hw = _grid_of(owners or [], dst_shape[0], extra, table=True)
        if src_side and src_side % 2 and dst_hw:
            return resize_rel_pos_bias(src, ((src_side + 1) // 2, ) * 2,
                                       dst_hw, extra)
    return None


_SHARED_TABLE = re.compile(r'(^|\.)rel_pos_bias\.relative_position_bias_table$')


def _adapt(module: nn.Module, state_dict: Dict[str, torch.Tensor],
           prefix: str, report: LoadReport, drop_mismatched: bool) -> None:
    """Adapt the keys of ``state_dict`` under ``prefix`` to ``module``, in
    place (see :func:`adapt_state_dict`)."""
    own = {k: v.shape for k, v in module.state_dict().items()}
    ours = [k for k in state_dict if k.startswith(prefix)]

    for full in ours:
        key = full[len(prefix):]
        if not _SHARED_TABLE.search(key) or key in own:
            continue
        per_block = [k for k in own
                     if k.endswith('attn.relative_position_bias_table')
                     and prefix + k not in state_dict]
        for dst in per_block:
            state_dict[prefix + dst] = state_dict[full].clone()
            report.adapted.append(f'{dst} <- {key}')
        if per_block:
            # consumed: the shared table (and its index) is not unexpected
            del state_dict[full]
            state_dict.pop(full.replace('bias_table', 'index'), None)

    for full in [k for k in state_dict if k.startswith(prefix)]:
        key = full[len(prefix):]
        if key not in own or own[key] == state_dict[full].shape:
            continue
        src, dst_shape = state_dict[full], own[key]
        new = None
        if key.endswith('pos_embed'):
            new = resize_abs_pos_embed(src, dst_shape,
                                       _owners(module, key)[0])
        elif key.endswith('relative_position_bias_table'):
            new = resize_rel_pos_table(src, dst_shape, _owners(module, key))
        elif key.endswith('relative_position_index'):
            del state_dict[full]  # a buffer the module computes itself
            continue
        if new is not None and new.shape == dst_shape:
            state_dict[full] = new
            report.adapted.append(
                f'{key}: {tuple(src.shape)} -> {tuple(dst_shape)}')
        elif drop_mismatched:
            report.mismatched.append(
                (key, tuple(src.shape), tuple(dst_shape)))
            del state_dict[full]


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
    out = dict(state_dict)
    _adapt(module, out, '', report if report is not None else LoadReport(),
           drop_mismatched=True)
    return out


def _pretrained_cfgs(init_cfg) -> Tuple[list, list]:
    cfgs = init_cfg if isinstance(init_cfg, list) else \
        [init_cfg] if init_cfg else []
    pretrained = [c for c in cfgs
                  if c.get('type') in ('Pretrained', PretrainedInit)]
    return pretrained, [c for c in cfgs if c not in pretrained]


class CheckedLoadingMixin:
    """Checked ``Pretrained`` loading and table adaptation for a
    ``BaseModule`` (put it before the ``BaseModule`` base class).

    ``init_weights`` initialises the module as without a checkpoint (the
    other ``init_cfg`` entries, the parents' and children's ``init_weights``)
    and then loads every ``dict(type='Pretrained', checkpoint=...,
    prefix=..., map_location=...)`` of ``init_cfg`` with
    :func:`load_pretrained_checked`. Subclasses whose ``init_weights``
    re-initialises parameters after ``super().init_weights()`` skip that when
    :attr:`loads_pretrained`.

    Any state dict loaded into the module gets its position tables adapted
    (:func:`adapt_state_dict`, except that other shape mismatches are left to
    the loader to report), before the load-state-dict pre-hooks registered
    by parent classes run.
    """

    @property
    def loads_pretrained(self) -> bool:
        """Whether ``init_cfg`` holds a ``Pretrained`` entry."""
        return bool(_pretrained_cfgs(self.init_cfg)[0])

    def init_weights(self) -> None:
        pretrained, others = _pretrained_cfgs(self.init_cfg)
        if not pretrained or getattr(self, '_is_init', False):
            return super().init_weights()
        original = self.init_cfg
        self.init_cfg = others or None
        try:
            super().init_weights()
        finally:
            self.init_cfg = original
        for cfg in pretrained:
            load_pretrained_checked(
                self, cfg['checkpoint'], prefix=cfg.get('prefix'),
                map_location=cfg.get('map_location', 'cpu'))
            if hasattr(self, '_params_init_info'):
                update_init_info(
                    self, init_info='checked Pretrained loading from '
                    f'{cfg["checkpoint"]}')

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        report = LoadReport()
        _adapt(self, state_dict, prefix, report, drop_mismatched=False)
        if report.adapted:
            print_log(f'{type(self).__name__} ({prefix or "top level"}): '
                      'adapted\n  ' + '\n  '.join(report.adapted),
                      logger='current')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def load_pretrained_checked(module: nn.Module,
                            checkpoint,
                            prefix: Optional[str] = None,
                            map_location: str = 'cpu',
                            strict_missing: bool = False,
                            min_loaded_fraction: float = 0.5,
                            logger='current',
                            trusted: Optional[bool] = None) -> LoadReport:
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
        trusted (bool, optional): see
            :func:`mmmim.utils.checkpoint.load_checkpoint_file`.

    Returns:
        LoadReport: also stored as ``module.pretrained_load_report``.

    Raises:
        KeyError: no checkpoint key starts with ``prefix``.
        RuntimeError: nothing (or less than ``min_loaded_fraction``) of
            the module was loaded, or ``strict_missing`` and something is
            missing.
        UnsafeCheckpointError: the file needs more than the allow-list.
    """
    name = type(module).__name__
    source = checkpoint if isinstance(checkpoint, str) else '<dict>'
    if isinstance(checkpoint, str):
        checkpoint = load_checkpoint_file(checkpoint, map_location, trusted)
    state_dict = unwrap_state_dict(checkpoint)
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
