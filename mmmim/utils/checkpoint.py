"""Reading checkpoint files without running code from them.

A ``.pth`` file is a pickle, and unpickling can call any function the file
names (``os.system`` included). mmmim reads every checkpoint with torch's
weights-only unpickler (``torch.load(..., weights_only=True)``), which
rebuilds tensors, containers and numbers, and nothing else unless it is
allow-listed. A full mmengine checkpoint of an mmmim run needs a few more
globals; ``import mmmim`` allow-lists exactly these with
``torch.serialization.add_safe_globals`` (:func:`register_safe_globals`):

- mmengine's ``HistoryBuffer`` (the message hub's log buffers) and the
  statistics methods it pickles by reference, ``getattr(HistoryBuffer,
  'mean')``: ``builtins.getattr`` is allow-listed as
  :func:`history_buffer_getattr`, which returns those methods and nothing
  else;
- numpy's array, scalar and dtype reconstruction (``numpy.ndarray``,
  ``numpy.dtype``, ``_reconstruct``, ``scalar``, under numpy 2's and
  numpy 1's module names) and the concrete dtype classes of booleans and
  numbers (no object, string or structured arrays).

Every loading path goes through the weights-only unpickler:

- ``--resume``, ``load_from`` and mmengine's ``Pretrained`` init of other
  packages' modules: mmengine's loader calls ``torch.load`` without
  ``weights_only``, so torch's default (``True`` since torch 2.6) applies,
  with this allow-list. mmengine's functions are not changed.
- ``init_cfg=dict(type='Pretrained')`` on mmmim modules, the converters in
  ``tools/model_converters/``, the tools in ``tools/analysis/`` and the
  iTPN CLIP teacher: :func:`load_checkpoint_file`.

A file that needs anything else is refused before any of it runs:
:class:`UnsafeCheckpointError` (a ``pickle.UnpicklingError``) names the file,
the globals it asks for and the opt-ins. Code that loads through mmengine
(e.g. a Runner) can turn torch's refusal into the same error with
:func:`explain_unsafe_checkpoint`.

Opt-in, for a file you trust (it may run any code it contains):

- ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` in the environment: torch's own
  switch; mmengine's loader then unpickles fully, and
  :func:`load_checkpoint_file` honours it too, so it covers every path;
- ``--trust-checkpoint`` on the converters and tools,
  ``load_checkpoint_file(..., trusted=True)`` in code,
  ``trust_checkpoint=True`` on ``iTPNCLIPTeacher``.

Public API: :func:`load_checkpoint_file`, :func:`load_checkpoint_into`,
:func:`unwrap_state_dict`, :class:`UnsafeCheckpointError`,
:func:`explain_unsafe_checkpoint`, :func:`register_safe_globals`,
:func:`trust_from_environment`, :func:`add_trust_checkpoint_argument`.
"""
import os
import os.path as osp
import pickle
import re
from collections import OrderedDict
from contextlib import contextmanager
from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

#: torch's environment switch that forces full unpickling (``weights_only``
#: not given) -- the opt-in for every loading path.
TRUST_ENV = 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'
_TRUE = ('1', 'y', 'yes', 'true')

# the statistics HistoryBuffer registers by default (mmengine 0.10)
_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs globals beyond the allow-list; nothing of it ran."""


def history_buffer_getattr(obj, name: str):
    """``getattr`` as checkpoints may call it: only ``HistoryBuffer``'s
    statistics methods (what its ``__getstate__`` pickles), anything else is
    refused."""
    if obj is HistoryBuffer:
        method = getattr(HistoryBuffer, name, None)
        registered = HistoryBuffer._statistics_methods.values()
        if name in _HISTORY_BUFFER_STATISTICS or (
                method is not None and method in registered):
            return method
    raise UnsafeCheckpointError(
        f'getattr({obj!r}, {name!r}) is not allowed in a checkpoint')


def _numpy_globals() -> list:
    multiarray = np._core.multiarray if hasattr(np, '_core') \
        else np.core.multiarray
    globs = [np.ndarray, np.dtype]
    # checkpoints written under numpy 1 and numpy 2 name these differently
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        globs += [(multiarray._reconstruct, f'{module}._reconstruct'),
                  (multiarray.scalar, f'{module}.scalar')]
    # booleans and numbers only: no object / string / structured dtypes
    globs += [type(np.dtype(code)) for code in '?bhilqpBHILQPefdgFDG']
    return globs


def safe_globals() -> list:
    """What a full mmengine checkpoint of an mmmim run needs beyond torch's
    own allow-list (see the module docstring)."""
    return [HistoryBuffer, (history_buffer_getattr, 'builtins.getattr')
            ] + _numpy_globals()


_REGISTERED = False


def register_safe_globals() -> None:
    """Add :func:`safe_globals` to torch's weights-only allow-list
    (idempotent; done by ``import mmmim``)."""
    global _REGISTERED
    if not _REGISTERED:
        torch.serialization.add_safe_globals(safe_globals())
        _REGISTERED = True


def trust_from_environment() -> bool:
    """Whether torch's ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` is set."""
    return os.environ.get(TRUST_ENV, '0').lower() in _TRUE


def _is_local(filename) -> bool:
    return '://' not in str(filename)


def _unsafe_globals(filename) -> Sequence[str]:
    if not (_is_local(filename) and osp.isfile(filename)):
        return ()
    try:
        return torch.serialization.get_unsafe_globals_in_checkpoint(filename)
    except Exception:  # not a zip checkpoint: torch's message says enough
        return ()


def _refusal(filename, reason: str) -> UnsafeCheckpointError:
    needs = [g for g in _unsafe_globals(filename)
             if g != 'builtins.getattr']
    what = (f'it asks for {", ".join(needs)}, ' if needs else '')
    return UnsafeCheckpointError(
        f'refused to load {filename}: {what}which mmmim\'s checkpoint '
        'allow-list does not hold, and unpickling it could run code. Load it '
        'only if you trust the file: set the environment variable '
        f'{TRUST_ENV}=1 (any path: --resume, load_from, init_cfg, tools), or '
        'pass --trust-checkpoint to the tool (trusted=True to '
        'mmmim.utils.checkpoint.load_checkpoint_file). See '
        'docs/reliability.md.\n(torch: ' + reason.strip()[:2000] + ')')


@contextmanager
def explain_unsafe_checkpoint(filename):
    """Turn torch's refusal to unpickle ``filename`` (weights-only) into an
    :class:`UnsafeCheckpointError` naming the opt-ins, e.g. around mmengine's
    ``Runner.load_checkpoint`` / ``resume``."""
    try:
        yield
    except UnsafeCheckpointError:
        raise
    except pickle.UnpicklingError as e:
        raise _refusal(filename, str(e)) from None
    except RuntimeError as e:
        if 'weights_only' in str(e) and 'TorchScript' in str(e):
            raise _refusal(
                filename, 'a TorchScript archive runs TorchScript code when '
                'loaded') from None
        raise


def load_checkpoint_file(filename: str,
                         map_location='cpu',
                         trusted: Optional[bool] = None,
                         extra_safe_globals: Iterable = ()):
    """Read a checkpoint without running code from it.

    Args:
        filename (str): A local path, or any URL mmengine's
            ``CheckpointLoader`` knows (``https://``, ``open-mmlab://``, ...).
        map_location: As in ``torch.load``. Defaults to ``'cpu'``.
        trusted (bool, optional): Unpickle fully (``weights_only=False``;
            a TorchScript archive is loaded with ``torch.jit.load``). Only for
            files you trust. Defaults to ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``.
        extra_safe_globals: Allowed for this file only, in addition to
            :func:`safe_globals` (e.g. ``argparse.Namespace`` for reference
            checkpoints).

    Returns:
        The unpickled object (usually a dict).

    Raises:
        FileNotFoundError: No such local file.
        UnsafeCheckpointError: The file needs more than the allow-list.
    """
    register_safe_globals()
    if trusted is None:
        trusted = trust_from_environment()
    if not _is_local(filename):
        if trusted and not trust_from_environment():
            raise ValueError(f'trusted loading of {filename} needs the file '
                             f'locally (or {TRUST_ENV}=1)')
        from mmengine.runner import CheckpointLoader
        with explain_unsafe_checkpoint(filename), \
                torch.serialization.safe_globals(list(extra_safe_globals)):
            return CheckpointLoader.load_checkpoint(
                filename, map_location=map_location, logger='silent')
    path = osp.expanduser(str(filename))
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path} not found')
    with explain_unsafe_checkpoint(path), \
            torch.serialization.safe_globals(list(extra_safe_globals)):
        return torch.load(
            path, map_location=map_location, weights_only=not trusted)


def unwrap_state_dict(checkpoint,
                      keys: Sequence[str] = ('state_dict', 'model', 'module'),
                      revise_keys: Sequence[Tuple[str, str]] = (
                          (r'^module\.', ''), )
                      ) -> 'OrderedDict[str, torch.Tensor]':
    """The parameter dict of a checkpoint.

    Follows the first of ``keys`` the checkpoint has (mmengine saves
    ``state_dict``, most reference code ``model``) and applies mmengine's
    ``revise_keys`` substitutions (default: DDP's ``module.`` prefix off).
    A ``torch.nn.Module`` (e.g. a TorchScript archive) gives its
    ``state_dict()``.
    """
    state = checkpoint
    if isinstance(state, torch.nn.Module):
        state = state.state_dict()
    for key in keys:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise TypeError(f'not a state dict: {type(state).__name__}')
    out = OrderedDict(state)
    for pattern, repl in revise_keys:
        out = OrderedDict((re.sub(pattern, repl, k), v)
                          for k, v in out.items())
    return out


def load_checkpoint_into(model: torch.nn.Module,
                         filename: str,
                         strict: bool = True,
                         map_location='cpu',
                         trusted: Optional[bool] = None,
                         logger='current') -> Dict:
    """:func:`load_checkpoint_file`, then mmengine's own loading of the
    ``state_dict`` into ``model`` (``module.`` stripped; ``strict`` raises
    on any missing or unexpected key). Returns the checkpoint."""
    from mmengine.runner.checkpoint import _load_checkpoint_to_model
    checkpoint = load_checkpoint_file(filename, map_location, trusted)
    if not isinstance(checkpoint, dict):
        raise TypeError(f'{filename} holds a {type(checkpoint).__name__}, '
                        'not a checkpoint dict')
    return _load_checkpoint_to_model(model, checkpoint, strict=strict,
                                     logger=logger)


def add_trust_checkpoint_argument(parser) -> None:
    """The tools' ``--trust-checkpoint`` flag (absent: the environment
    decides, see :func:`trust_from_environment`)."""
    parser.add_argument(
        '--trust-checkpoint', action='store_true', default=None,
        help='unpickle the checkpoint fully (weights_only=False): only for a '
        'file you trust, it can run any code it contains. Without it, '
        'anything beyond tensors and the few types of an mmengine checkpoint '
        f'is refused (or set {TRUST_ENV}=1)')
