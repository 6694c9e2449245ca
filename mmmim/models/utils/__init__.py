from .attention import fused_multihead_attention, relative_position_bias
from .checkpoint_loading import (CheckedLoadingMixin, LoadReport,
                                 adapt_state_dict, load_pretrained_checked)
from .masking import (masked_per_image, masks_from_data_samples,
                      random_patch_mask, to_device, visible_first_order)
from .position_embedding import (resize_rel_pos_bias, sincos_1d,
                                 sincos_pos_embed_2d)
from .sync_batchnorm import PortableSyncBN
from .token_batchnorm import TokenBatchNorm
from .weight_init import init_linear_layernorm, trunc_normal_02_

__all__ = [
    'CheckedLoadingMixin', 'LoadReport', 'PortableSyncBN', 'TokenBatchNorm',
    'adapt_state_dict', 'fused_multihead_attention', 'init_linear_layernorm',
    'load_pretrained_checked', 'masked_per_image', 'masks_from_data_samples',
    'random_patch_mask', 'relative_position_bias', 'resize_rel_pos_bias',
    'sincos_1d', 'sincos_pos_embed_2d', 'to_device', 'trunc_normal_02_',
    'visible_first_order'
]
