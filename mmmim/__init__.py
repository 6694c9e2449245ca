"""mmmim: masked image modeling as an OpenMMLab plugin.

Importing this package registers its components into mmpretrain's registries.
"""
from .version import __version__

__all__ = ['__version__']
