"""mmmim: masked image modeling as an OpenMMLab plugin.

Importing this package registers its components into mmpretrain's registries
and adds the few globals a full mmengine checkpoint needs to torch's
weights-only allow-list (``mmmim.utils.checkpoint``), so that ``--resume`` and
``load_from`` read mmmim checkpoints without unpickling anything else. It
changes no function or method of another package.
"""
from .utils.checkpoint import register_safe_globals
from .version import __version__

register_safe_globals()

from . import datasets, engine, evaluation, models  # noqa: E402,F401

__all__ = ['__version__']
