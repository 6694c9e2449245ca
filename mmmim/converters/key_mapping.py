"""Two-way key maps for checkpoint converters, failing loudly on anything unmapped.

A :class:`KeyMap` is a list of ``(reference_pattern, mmmim_pattern)`` pairs.
Patterns name their variable parts: ``{i}`` is a block index, ``{x}`` any
suffix copied as is, ``{b}`` a block suffix renamed by ``block_renames``
(e.g. ``mlp.fc1.`` <-> ``ffn.layers.0.0.``). The same table converts in both
directions, so reference -> mmmim -> reference is the identity.
"""
import argparse
import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch

from mmmim.utils.checkpoint import load_checkpoint_file, unwrap_state_dict

#: what reference checkpoints pickle beyond tensors (their training
#: arguments)
REFERENCE_SAFE_GLOBALS = [argparse.Namespace]

_FIELDS = {'i': r'(?P<i>\d+)', 'x': r'(?P<x>.+)', 'b': r'(?P<b>.+)'}


def _compile(pattern: str):
    regex = re.escape(pattern)
    for name, group in _FIELDS.items():
        regex = regex.replace(re.escape('{' + name + '}'), group)
    return re.compile('^' + regex + '$')


class KeyMap:
    """A two-way map between reference and mmmim parameter names.

    Args:
        pairs: ``(reference_pattern, mmmim_pattern)`` pairs, tried in order.
        block_renames: ``(reference_prefix, mmmim_prefix)`` applied to ``{b}``.
        ignore: reference keys (regexes) that have no mmmim counterpart and
            are dropped on purpose (e.g. buffers mmmim computes itself),
            even where a pattern would match them.
    """

    def __init__(self,
                 pairs: Sequence[Tuple[str, str]],
                 block_renames: Sequence[Tuple[str, str]] = (),
                 ignore: Iterable[str] = ()):
        self.pairs = [(ref, mine, _compile(ref), _compile(mine))
                      for ref, mine in pairs]
        self.block_renames = list(block_renames)
        self.ignore = [re.compile(p) for p in ignore]

    def _rename_block(self, suffix: str, to_mmmim: bool) -> str:
        for ref, mine in self.block_renames:
            src, dst = (ref, mine) if to_mmmim else (mine, ref)
            if suffix.startswith(src):
                return dst + suffix[len(src):]
        return suffix

    def map_key(self, key: str, to_mmmim: bool = True) -> Optional[str]:
        for ref, mine, ref_re, mine_re in self.pairs:
            match = (ref_re if to_mmmim else mine_re).match(key)
            if match is None:
                continue
            fields = match.groupdict()
            if 'b' in fields:
                fields['b'] = self._rename_block(fields['b'], to_mmmim)
            return (mine if to_mmmim else ref).format(**fields)
        return None

    def convert(self,
                state_dict: Dict[str, torch.Tensor],
                to_mmmim: bool = True,
                strict: bool = True) -> Dict[str, torch.Tensor]:
        """Rename every key; with ``strict``, raise naming unmapped keys."""
        out, unmapped = {}, []
        for key, value in state_dict.items():
            if to_mmmim and any(p.search(key) for p in self.ignore):
                continue
            new_key = self.map_key(key, to_mmmim)
            if new_key is None:
                unmapped.append(key)
                continue
            out[new_key] = value
        if unmapped and strict:
            raise KeyError(f'{len(unmapped)} keys have no mapping: '
                           f'{sorted(unmapped)[:20]}')
        return out


def load_reference_checkpoint(path: str,
                              keys: Sequence[str] = ('model', 'state_dict'),
                              trusted: Optional[bool] = None
                              ) -> Dict[str, torch.Tensor]:
    """A reference checkpoint's weights, read without running code from it.

    The reference training scripts save their ``argparse.Namespace`` next
    to the weights; it is allowed for these files (an attribute holder that
    runs nothing). The first of ``keys`` present is used; a DDP ``module.``
    prefix is stripped. ``trusted``: see
    :func:`mmmim.utils.checkpoint.load_checkpoint_file`.
    """
    checkpoint = load_checkpoint_file(
        path, trusted=trusted, extra_safe_globals=REFERENCE_SAFE_GLOBALS)
    return unwrap_state_dict(checkpoint, keys)


def check_against_model(state_dict: Dict[str, torch.Tensor],
                        model: torch.nn.Module,
                        allow_missing: Iterable[str] = ()) -> List[str]:
    """Compare a converted state dict with a model's; raise on any mismatch.

    Returns the model keys the state dict does not provide that match one of
    the ``allow_missing`` prefixes (e.g. ``'neck.'`` for an encoder-only
    checkpoint); any other missing key, any unexpected key and any shape
    mismatch raises a ``ValueError`` listing all of them. ``model`` may live
    on the meta device.
    """
    allow_missing = tuple(allow_missing)
    model_state = model.state_dict()
    missing = [k for k in model_state if k not in state_dict]
    unexpected = [k for k in state_dict if k not in model_state]
    mismatched = [
        f'{k}: checkpoint {tuple(v.shape)} vs model '
        f'{tuple(model_state[k].shape)}' for k, v in state_dict.items()
        if k in model_state and v.shape != model_state[k].shape
    ]
    not_allowed = [k for k in missing if not k.startswith(allow_missing)]
    problems = [f'{len(keys)} {title}:\n  ' + '\n  '.join(keys)
                for title, keys in (('shape mismatch', mismatched),
                                    ('unexpected', unexpected),
                                    ('missing', not_allowed)) if keys]
    if problems:
        raise ValueError('checkpoint does not fit the model; nothing '
                         'converted.\n' + '\n'.join(problems))
    return [k for k in missing if k.startswith(allow_missing)]
