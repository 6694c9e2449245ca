"""mmmim: masked image modeling as an OpenMMLab plugin.

Importing this package registers its components into mmpretrain's registries,
makes mmengine load full checkpoints on current PyTorch (``mmmim.utils.compat``)
and makes ``init_cfg=dict(type='Pretrained', ...)`` on mmmim modules report every
missing / unexpected key and fail when nothing loads
(``mmmim.models.utils.checkpoint_loading``).
"""
from .utils import patch_mmengine_checkpoint_loading
from .version import __version__

patch_mmengine_checkpoint_loading()

from . import datasets, engine, evaluation, models  # noqa: E402,F401

__all__ = ['__version__']
