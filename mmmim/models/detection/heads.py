"""mmdet's Mask R-CNN parts with RoIAlign and NMS on any device.

Each class is mmdet's own with one op swapped for its portable version
(:mod:`.ops`: mmcv's kernel where mmcv has one for the device, torchvision's
otherwise), through an extension point mmdet / mmcv already have:

- the RoI extractors build their layers from a class when ``roi_layer.type``
  is one (``'RoIAlign'`` becomes :class:`~.ops.PortableRoIAlign`);
- mmcv's ``batched_nms`` calls ``nms_cfg['type']`` when it is a callable, so
  the heads hand it a copy of their test config with ``type='nms'`` bound
  to :func:`~.ops.nms`;
- the mask head computes its RoIAlign-resized bitmap targets with
  :func:`~.ops.roi_align` on the proposals' device (mmdet's ``mask_target``
  calls mmcv's kernel there directly).

They are registered in mmdet's ``MODELS`` under ``Portable<mmdet name>``;
importing ``mmmim.models.detection`` (the Mask R-CNN configs'
``custom_imports``) registers them.
"""
from typing import List

import torch
from mmengine.config import ConfigDict
from torch import Tensor
from torch.nn.modules.utils import _pair

from mmdet.models.dense_heads import RPNHead
from mmdet.models.roi_heads.bbox_heads import Shared4Conv1FCBBoxHead
from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
from mmdet.registry import MODELS
from mmdet.structures.mask import BitmapMasks
from .ops import PortableRoIAlign, mmcv_has_kernels, portable_nms_cfg, roi_align


def _with_portable_nms(cfg):
    """A copy of a head's test config whose ``nms`` runs on any device."""
    if cfg is None or 'nms' not in cfg:
        return cfg
    cfg = ConfigDict(cfg)
    cfg.nms = portable_nms_cfg(cfg.nms)
    return cfg


@MODELS.register_module()
class PortableSingleRoIExtractor(SingleRoIExtractor):
    """``SingleRoIExtractor`` whose ``roi_layer=dict(type='RoIAlign', ...)``
    is a :class:`PortableRoIAlign` (same arguments)."""

    def build_roi_layers(self, layer_cfg, featmap_strides):
        if layer_cfg.get('type') == 'RoIAlign':
            layer_cfg = dict(layer_cfg, type=PortableRoIAlign)
        return super().build_roi_layers(layer_cfg, featmap_strides)


@MODELS.register_module()
class PortableRPNHead(RPNHead):
    """``RPNHead`` whose proposal NMS runs on any device."""

    def _bbox_post_process(self, results, cfg, *args, **kwargs):
        return super()._bbox_post_process(results, _with_portable_nms(cfg),
                                          *args, **kwargs)


@MODELS.register_module()
class PortableShared4Conv1FCBBoxHead(Shared4Conv1FCBBoxHead):
    """``Shared4Conv1FCBBoxHead`` whose per-class NMS runs on any device."""

    def _predict_by_feat_single(self, *args, rcnn_test_cfg=None, **kwargs):
        return super()._predict_by_feat_single(
            *args, rcnn_test_cfg=_with_portable_nms(rcnn_test_cfg), **kwargs)


def bitmap_mask_targets(pos_proposals: Tensor, pos_assigned_gt_inds: Tensor,
                        gt_masks: BitmapMasks, mask_size,
                        binarize: bool = True) -> Tensor:
    """mmdet's ``mask_target_single`` for bitmap masks, on the proposals'
    device: each positive proposal (clipped to the image) RoIAligned
    (``aligned=True``, adaptive sampling) out of its ground-truth mask, then
    thresholded at 0.5. (N, h, w) float."""
    device = pos_proposals.device
    mask_size = _pair(mask_size)
    if pos_proposals.shape[0] == 0 or len(gt_masks) == 0:
        return pos_proposals.new_zeros((0, ) + mask_size)
    boxes = pos_proposals.detach().clone()
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, gt_masks.width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, gt_masks.height)
    masks = torch.from_numpy(gt_masks.masks)
    if device.type == 'cuda':  # no host wait for the copy
        masks = masks.pin_memory()
    masks = masks.to(device, non_blocking=True)
    masks = masks.index_select(0, pos_assigned_gt_inds).to(boxes.dtype)
    rois = torch.cat([
        torch.arange(len(boxes), device=device, dtype=boxes.dtype)[:, None],
        boxes
    ], dim=1)
    targets = roi_align(masks[:, None], rois, mask_size, 1.0, 0, 'avg',
                        True).squeeze(1)
    return (targets >= 0.5).float() if binarize else targets.float()


@MODELS.register_module()
class PortableFCNMaskHead(FCNMaskHead):
    """``FCNMaskHead`` whose bitmap mask targets are computed on any device
    (:func:`bitmap_mask_targets`); polygon masks and devices where mmcv has
    kernels take mmdet's own ``mask_target``."""

    def get_targets(self, sampling_results: List, batch_gt_instances: List,
                    rcnn_train_cfg) -> Tensor:
        gt_masks = [res.masks for res in batch_gt_instances]
        device = sampling_results[0].pos_priors.device
        if mmcv_has_kernels(device) or not all(
                isinstance(m, BitmapMasks) for m in gt_masks):
            return super().get_targets(sampling_results, batch_gt_instances,
                                       rcnn_train_cfg)
        binarize = not rcnn_train_cfg.get('soft_mask_target', False)
        targets = [
            bitmap_mask_targets(res.pos_priors, res.pos_assigned_gt_inds, m,
                                rcnn_train_cfg.mask_size, binarize)
            for res, m in zip(sampling_results, gt_masks)
        ]
        return torch.cat(targets)
