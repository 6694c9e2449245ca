from .checkpoint_loading import (CheckedLoadingMixin, LoadReport,
                                 adapt_state_dict, load_pretrained_checked)
from .masking import (masks_from_data_samples, random_patch_mask,
                      visible_first_order)
from .position_embedding import sincos_1d, sincos_pos_embed_2d
from .sync_batchnorm import PortableSyncBN

__all__ = [
    'CheckedLoadingMixin', 'LoadReport', 'PortableSyncBN', 'adapt_state_dict',
    'load_pretrained_checked', 'masks_from_data_samples', 'random_patch_mask',
    'visible_first_order', 'sincos_1d', 'sincos_pos_embed_2d'
]
