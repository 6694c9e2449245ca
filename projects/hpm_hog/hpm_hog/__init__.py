"""Texture-guided hard patch mining on HOG targets: an mmmim project.

Importing this module (``custom_imports`` in the config) registers the
project's components into mmpretrain's registries; nothing in ``mmmim/`` is
modified.
"""
from .hog_hpm import HOGHardPatchPretrainer, HOGReconstructionHead

__all__ = ['HOGHardPatchPretrainer', 'HOGReconstructionHead']
