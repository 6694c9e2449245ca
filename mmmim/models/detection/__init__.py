"""Mask R-CNN parts whose RoIAlign and NMS run on any device.

Not imported by ``import mmmim`` (it needs mmdet, hence mmcv's compiled ops,
which pre-training does not): the Mask R-CNN configs import it with
``custom_imports=dict(imports=['mmmim', 'mmmim.models.detection'])``.
"""
from .heads import (PortableFCNMaskHead, PortableRPNHead,
                    PortableShared4Conv1FCBBoxHead,
                    PortableSingleRoIExtractor, bitmap_mask_targets)
from .ops import (PortableRoIAlign, batched_nms, mmcv_has_kernels, nms,
                  roi_align)

__all__ = [
    'PortableFCNMaskHead', 'PortableRPNHead',
    'PortableShared4Conv1FCBBoxHead', 'PortableSingleRoIExtractor',
    'PortableRoIAlign', 'bitmap_mask_targets', 'batched_nms',
    'mmcv_has_kernels', 'nms', 'roi_align'
]
