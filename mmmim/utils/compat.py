"""Compatibility of the frozen OpenMMLab stack with current PyTorch.

torch >= 2.6 loads with ``weights_only=True`` by default. mmengine 0.10.7 calls
``torch.load(filename, map_location=...)`` for local files, so ``--resume`` and
``load_from`` of full mmengine checkpoints (which pickle the message hub, numpy
scalars and the config) fail with an ``UnpicklingError``.

The fix is deliberately narrow: only mmengine's loader for local paths (the
``''`` scheme of :class:`mmengine.runner.CheckpointLoader`) is replaced, by the
same function with ``weights_only=False``, which is what mmengine got on the
torch versions it was written for. Nothing else in torch or mmengine changes,
and no environment variable is involved. As with any pickle, only load
checkpoints you trust.
"""
import os.path as osp

import torch
from mmengine.runner import CheckpointLoader

_PATCHED = False


def load_local_checkpoint(filename, map_location=None):
    """mmengine's local-file loader with ``weights_only=False``."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=False)


def patch_mmengine_checkpoint_loading() -> None:
    """Make mmengine load full local checkpoints on torch >= 2.6 (idempotent)."""
    global _PATCHED
    if _PATCHED:
        return
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_local_checkpoint, force=True)
    _PATCHED = True


def init_cpu_process_group(launcher: str, backend: str = 'gloo') -> bool:
    """Start the process group for a CPU-only ``torchrun`` launch.

    mmengine's ``init_dist`` for the pytorch launcher always calls
    ``torch.cuda.set_device``, which fails on a machine without a GPU. When
    there is no GPU, the group is started here with ``gloo`` from torchrun's
    environment; the Runner then sees it is already distributed and skips its
    own initialisation. Returns True when it started a group.
    """
    import torch.distributed as dist
    if (launcher != 'pytorch' or torch.cuda.is_available()
            or not dist.is_available() or dist.is_initialized()):
        return False
    dist.init_process_group(backend=backend)
    return True
