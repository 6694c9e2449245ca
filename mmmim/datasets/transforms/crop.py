"""RandomResizedCrop with one draw of area and aspect ratio (MAE's probe)."""
import math
from typing import Tuple

import numpy as np
from mmcv.transforms.utils import cache_randomness

from mmpretrain.datasets.transforms import RandomResizedCrop
from mmpretrain.registry import TRANSFORMS


@TRANSFORMS.register_module()
class SingleDrawRandomResizedCrop(RandomResizedCrop):
    """``RandomResizedCrop`` that draws the box once and clamps it.

    torchvision's and mmpretrain's crops redraw area and aspect ratio until
    the box fits the image (up to 10 times, then a central crop). The crop of
    MAE's linear probe (``util/crop.py``, after BYOL's TensorFlow code) draws
    them once and clips the box's width and height to the image, which makes
    full-width or full-height boxes more frequent. Arguments are those of
    mmpretrain's ``RandomResizedCrop`` (``max_attempts`` is not used).
    """

    @cache_randomness
    def rand_crop_params(self, img: np.ndarray) -> Tuple[int, int, int, int]:
        """(offset_h, offset_w, target_h, target_w) of the crop box."""
        h, w = img.shape[:2]
        target_area = np.random.uniform(*self.crop_ratio_range) * h * w
        log_ratio = (math.log(self.aspect_ratio_range[0]),
                     math.log(self.aspect_ratio_range[1]))
        aspect_ratio = math.exp(np.random.uniform(*log_ratio))
        target_w = min(int(round(math.sqrt(target_area * aspect_ratio))), w)
        target_h = min(int(round(math.sqrt(target_area / aspect_ratio))), h)
        offset_h = np.random.randint(0, h - target_h + 1)
        offset_w = np.random.randint(0, w - target_w + 1)
        return offset_h, offset_w, target_h, target_w
