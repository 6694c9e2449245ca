"""RoIAlign and NMS on any device: mmcv's kernel where mmcv has one for the
tensor's device, torchvision's otherwise.

The mmcv wheel that ``tools/install.sh`` builds without a CUDA toolkit has CPU
kernels only, so mmdet's RoIAlign and NMS stop at the first CUDA tensor.
torchvision ships CPU and CUDA kernels of both ops with every torch build;
these functions give mmcv's results from them (same arguments, same outputs,
same order of kept boxes), so a detector trains on a GPU with the ordinary
install. Where mmcv was compiled with CUDA (a toolkit was present when it was
built), its own kernels run, as before.

``tests/test_detection_ops.py`` checks both routes against each other on the
CPU: RoIAlign (aligned or not, adaptive or fixed sampling, forward and
backward) and NMS (ties, ``offset=1`` boxes, score threshold, ``max_num``,
batched across classes).
"""
import functools
from typing import Dict, Optional, Tuple, Union

import torch
import torchvision
from torch import Tensor
from torch.nn.modules.utils import _pair

from mmcv import ops as mmcv_ops


@functools.lru_cache(maxsize=None)
def _mmcv_kernel_device_types() -> frozenset:
    """Device types mmcv's compiled extension has kernels for."""
    types = {'cpu'}
    if mmcv_ops.get_compiling_cuda_version() != 'not available':
        types.add('cuda')
    return frozenset(types)


def mmcv_has_kernels(device: Union[str, torch.device]) -> bool:
    """Whether mmcv's RoIAlign / NMS kernels run on ``device``."""
    return torch.device(device).type in _mmcv_kernel_device_types()


def _torchvision(op, *args):
    """Call a torchvision op, saying what to install where it has no kernel
    for the tensors' device."""
    try:
        return op(*args)
    except NotImplementedError as e:
        raise NotImplementedError(
            f'{op.__name__} on {args[0].device.type}: neither mmcv nor '
            'torchvision has a kernel for this device here; install the '
            'torchvision build that matches torch (tools/install.sh does) or '
            'build mmcv with ops for this device') from e


def roi_align(input: Tensor,
              rois: Tensor,
              output_size,
              spatial_scale: float = 1.0,
              sampling_ratio: int = 0,
              pool_mode: str = 'avg',
              aligned: bool = True) -> Tensor:
    """``mmcv.ops.roi_align`` on any device (same arguments).

    torchvision's kernel takes the same ``(batch index, x1, y1, x2, y2)``
    rows, the same adaptive sampling for ``sampling_ratio <= 0`` and the same
    half-pixel shift for ``aligned``; it has no ``pool_mode='max'``.
    """
    if mmcv_has_kernels(input.device):
        return mmcv_ops.roi_align(input, rois, output_size, spatial_scale,
                                  sampling_ratio, pool_mode, aligned)
    if pool_mode != 'avg':
        raise NotImplementedError(
            f"RoIAlign pool_mode='{pool_mode}' needs mmcv's kernels on "
            f'{input.device.type}, which this mmcv build lacks: build mmcv '
            "with CUDA (a CUDA toolkit present) or use pool_mode='avg'")
    return _torchvision(torchvision.ops.roi_align, input, rois,
                        _pair(output_size), spatial_scale, sampling_ratio,
                        aligned)


class PortableRoIAlign(mmcv_ops.RoIAlign):
    """``mmcv.ops.RoIAlign`` (same arguments and attributes) that runs on
    any device through :func:`roi_align`."""

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:
        if self.use_torchvision:
            return super().forward(input, rois)
        return roi_align(input, rois, self.output_size, self.spatial_scale,
                         self.sampling_ratio, self.pool_mode, self.aligned)


def nms(boxes: Tensor,
        scores: Tensor,
        iou_threshold: float,
        offset: int = 0,
        score_threshold: float = 0,
        max_num: int = -1) -> Tuple[Tensor, Tensor]:
    """``mmcv.ops.nms`` on any device, for tensors: ``(dets, keep)`` with
    ``dets = [boxes[keep], scores[keep]]``, ``keep`` by decreasing score.

    Equal scores are visited in the order of ``scores.sort(descending=True)``,
    as mmcv's kernels visit them (torchvision's kernel sorts stably, which
    breaks ties differently, so the boxes are handed to it pre-sorted).
    ``offset=1`` (mmcv's legacy widths ``x2 - x1 + 1``) becomes
    ``x2 + 1``, ``y2 + 1`` for torchvision, the same areas and overlaps.
    """
    if mmcv_has_kernels(boxes.device):
        return mmcv_ops.nms(boxes, scores, iou_threshold, offset,
                            score_threshold, max_num)
    if offset not in (0, 1):
        raise ValueError(f'offset must be 0 or 1, got {offset}')
    candidates = None
    if score_threshold > 0:
        candidates = torch.nonzero(scores > score_threshold).squeeze(1)
        boxes_in, scores_in = boxes[candidates], scores[candidates]
    else:
        boxes_in, scores_in = boxes, scores
    order = scores_in.sort(dim=0, descending=True)[1]
    boxes_in, scores_in = boxes_in[order], scores_in[order]
    if offset:
        boxes_in = boxes_in + boxes_in.new_tensor([0, 0, offset, offset])
    keep = order[_torchvision(torchvision.ops.nms, boxes_in, scores_in,
                              float(iou_threshold))]
    if max_num > 0:
        keep = keep[:max_num]
    if candidates is not None:
        keep = candidates[keep]
    dets = torch.cat([boxes[keep], scores[keep].reshape(-1, 1)], dim=1)
    return dets, keep


def portable_nms_cfg(nms_cfg: Optional[Dict]) -> Optional[Dict]:
    """An mmcv ``batched_nms`` config whose ``type='nms'`` runs :func:`nms`.

    mmcv's ``batched_nms`` calls ``nms_cfg['type']`` when it is a callable
    (a string is looked up among mmcv's own NMS functions), so its grouping
    by class, ``class_agnostic`` and ``split_thr`` stay mmcv's own. Other
    types (``soft_nms`` runs on the CPU anyway) are kept.
    """
    if nms_cfg is None or nms_cfg.get('type', 'nms') != 'nms':
        return nms_cfg
    cfg = type(nms_cfg)(nms_cfg)  # a copy; ConfigDict stays ConfigDict
    cfg['type'] = nms
    return cfg


def batched_nms(boxes: Tensor,
                scores: Tensor,
                idxs: Tensor,
                nms_cfg: Optional[Dict],
                class_agnostic: bool = False) -> Tuple[Tensor, Tensor]:
    """``mmcv.ops.batched_nms`` on any device (NMS within each ``idxs``
    group)."""
    return mmcv_ops.batched_nms(boxes, scores, idxs,
                                portable_nms_cfg(nms_cfg), class_agnostic)
