from .masking import (masks_from_data_samples, random_patch_mask,
                      visible_first_order)
from .position_embedding import sincos_1d, sincos_pos_embed_2d

__all__ = [
    'masks_from_data_samples', 'random_patch_mask', 'visible_first_order',
    'sincos_1d', 'sincos_pos_embed_2d'
]
from .checkpoint_loading import load_pretrained_checked  # noqa: F401
from .sync_batchnorm import PortableSyncBN  # noqa: F401
