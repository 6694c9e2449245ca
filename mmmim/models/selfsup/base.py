"""What every mmmim pre-training algorithm shares: where its patch mask comes from."""
from typing import List, Optional

import torch

from mmpretrain.models import BaseSelfSupervisor
from ..utils import masks_from_data_samples, random_patch_mask


class MIMSelfSupervisor(BaseSelfSupervisor):
    """``BaseSelfSupervisor`` with the explicit-mask interface.

    :meth:`get_mask` returns the pipeline's mask (``data_samples[i].mask``)
    when every sample has one, exactly as given, and otherwise a random mask
    with ``mask_ratio`` made on the input's device.

    Args:
        mask_ratio (float): Ratio of masked patches when the pipeline gives no
            mask.
    """

    def __init__(self, *args, mask_ratio: float = 0.75, **kwargs):
        super().__init__(*args, **kwargs)
        if not 0 < mask_ratio < 1:
            raise ValueError(f'mask_ratio must be in (0, 1), got {mask_ratio}')
        self.mask_ratio = mask_ratio

    @property
    def num_patches(self) -> int:
        h, w = self.backbone.patch_resolution
        return h * w

    def get_mask(self, inputs: torch.Tensor,
                 data_samples: Optional[List]) -> torch.Tensor:
        """(B, L) bool patch mask, 1 = masked."""
        mask = masks_from_data_samples(data_samples)
        if mask is None:
            return random_patch_mask(inputs.shape[0], self.num_patches,
                                     self.mask_ratio, device=inputs.device)
        if mask.shape[1] != self.num_patches:
            raise ValueError(
                f'the pipeline mask has {mask.shape[1]} patches, the model '
                f'expects {self.num_patches}: check the MaskGenerator\'s '
                'input_size / patch_size against the model')
        return mask.to(inputs.device)

    def reconstruct(self, inputs: torch.Tensor,
                    mask: torch.Tensor) -> torch.Tensor:
        """The model's reconstruction (B, C, H, W) of normalised ``inputs``
        under ``mask``, de-normalised per patch where the target was
        (``norm_pix``); used by the reconstruction pictures."""
        raise NotImplementedError(
            f'{type(self).__name__} does not reconstruct pixels')

    def extract_feat(self, inputs: torch.Tensor):
        """Dense features of the unmasked encoder (tuple of NCHW maps)."""
        return self.backbone(inputs)
