"""SIM's two views with recorded crop geometry (Tao et al., Siamese Image
Modeling for Self-Supervised Vision Representation Learning, CVPR 2023;
docs/sim.md)."""
import copy
from typing import List, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform, Compose
from PIL import Image
from torchvision import transforms as tv_transforms

from mmpretrain.datasets.transforms import RandomResizedCrop
from mmpretrain.registry import TRANSFORMS


@TRANSFORMS.register_module()
class SIMColorJitter(BaseTransform):
    """torchvision's ``ColorJitter`` (the reference's) on a BGR uint8 array.

    mmpretrain's ``ColorJitter`` cannot be used: ``mmcv.adjust_hue`` fails
    for negative hue factors under numpy 2 (``np.uint8(-25)`` overflows).

    Args:
        brightness, contrast, saturation, hue: As torchvision's.
    """

    def __init__(self, brightness=0., contrast=0., saturation=0., hue=0.):
        self.jitter = tv_transforms.ColorJitter(brightness, contrast,
                                                saturation, hue)

    def transform(self, results: dict) -> dict:
        img = results['img']
        pil = Image.fromarray(np.ascontiguousarray(img[..., ::-1]))
        results['img'] = np.ascontiguousarray(
            np.asarray(self.jitter(pil))[..., ::-1])
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.jitter!r})'


# The reference's colour augmentations, written with mmpretrain / mmcv
# transforms (as mmpretrain's BYOL configs do); images are BGR.
_JITTER = dict(
    type='RandomApply',
    transforms=[
        dict(type='SIMColorJitter', brightness=0.4, contrast=0.4,
             saturation=0.2, hue=0.1)
    ],
    prob=0.8)
_GRAY = dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
             channel_weights=(0.114, 0.587, 0.2989))


def _blur(prob: float) -> dict:
    return dict(type='GaussianBlur', magnitude_range=(0.1, 2.0),
                magnitude_std='inf', prob=prob)


SIM_VIEW1_COLOR = [_JITTER, _GRAY, _blur(1.0)]
SIM_VIEW2_COLOR = [_JITTER, _GRAY, _blur(0.1),
                   dict(type='Solarize', thr=128, prob=0.2)]


def _build(pipeline: Optional[Sequence[dict]]) -> Compose:
    pipeline = copy.deepcopy(list(pipeline or []))
    for cfg in pipeline:
        cfg.setdefault('_scope_', 'mmpretrain')
    return Compose([TRANSFORMS.build(cfg) for cfg in pipeline])


@TRANSFORMS.register_module()
class SIMTwoViews(BaseTransform):
    """Two views of one image for SIM, with the crop geometry recorded.

    Per view: horizontal flip with ``flip_prob``, then a random resized crop
    (box ``(i, j, h, w)`` in the possibly flipped image; mmpretrain's
    ``RandomResizedCrop`` draws it), then the view's colour pipeline. View 1
    defaults to ColorJitter(0.4, 0.4, 0.2, 0.1) p 0.8, grayscale p 0.2, blur
    sigma 0.1-2 p 1.0; view 2 to the same jitter / grayscale, blur p 0.1 and
    solarize p 0.2.

    **Required keys:** ``img``.
    **Modified keys:** ``img`` (a list ``[view1, view2]``, as mmpretrain's
    ``MultiView``), ``img_shape``.
    **Added keys:** ``crop_boxes`` ((2, 4) float32 ``(i, j, h, w)``),
    ``flips`` ((2,) bool), ``img_width`` (int). Pack them with
    ``PackInputs(algorithm_keys=['mask', 'crop_boxes', 'flips',
    'img_width'])``.

    Args:
        size (int | tuple): Output size of both views. Defaults to 224.
        crop_ratio_range (tuple): Crop area range. Defaults to (0.08, 1.0).
        aspect_ratio_range (tuple): Crop aspect range. Defaults to (3/4, 4/3).
        interpolation (str): Resize interpolation. Defaults to 'bicubic'.
        backend (str): Resize backend ('pillow' as the reference, or 'cv2').
        flip_prob (float): Flip probability per view. Defaults to 0.5.
        view1_pipeline (list[dict], optional): Colour transforms of view 1;
            None gives the reference's.
        view2_pipeline (list[dict], optional): Colour transforms of view 2;
            None gives the reference's.
        same_crop (bool): View 2 takes view 1's flip and crop (only the
            colour transforms differ): SIM's "same view" ablation step (with
            empty colour pipelines both views are the same image, as MAE's).
    """

    def __init__(self,
                 size: Union[int, Tuple[int, int]] = 224,
                 crop_ratio_range: Tuple[float, float] = (0.08, 1.0),
                 aspect_ratio_range: Tuple[float, float] = (3. / 4., 4. / 3.),
                 interpolation: str = 'bicubic',
                 backend: str = 'pillow',
                 flip_prob: float = 0.5,
                 view1_pipeline: Optional[List[dict]] = None,
                 view2_pipeline: Optional[List[dict]] = None,
                 same_crop: bool = False) -> None:
        if not 0 <= flip_prob <= 1:
            raise ValueError(f'flip_prob must be in [0, 1], got {flip_prob}')
        self.crop = RandomResizedCrop(
            size,
            crop_ratio_range=crop_ratio_range,
            aspect_ratio_range=aspect_ratio_range,
            interpolation=interpolation,
            backend=backend)
        self.flip_prob = flip_prob
        self.same_crop = bool(same_crop)
        self.view_pipelines = [
            _build(SIM_VIEW1_COLOR if view1_pipeline is None
                   else view1_pipeline),
            _build(SIM_VIEW2_COLOR if view2_pipeline is None
                   else view2_pipeline),
        ]

    def _spatial(self, img: np.ndarray,
                 geometry: Optional[tuple] = None
                 ) -> Tuple[np.ndarray, bool, list]:
        if geometry is None:
            flip = bool(np.random.rand() < self.flip_prob)
        else:
            flip = geometry[0]
        if flip:
            img = mmcv.imflip(img, direction='horizontal')
        if geometry is None:
            i, j, h, w = self.crop.rand_crop_params(img)
        else:
            i, j, h, w = geometry[1]
        img = mmcv.imcrop(img, np.array([j, i, j + w - 1, i + h - 1]))
        img = mmcv.imresize(
            img,
            tuple(self.crop.scale[::-1]),
            interpolation=self.crop.interpolation,
            backend=self.crop.backend)
        return img, flip, [i, j, h, w]

    def transform(self, results: dict) -> dict:
        img = results['img']
        views, flips, boxes = [], [], []
        for pipeline in self.view_pipelines:
            geometry = (flips[0], boxes[0]) if self.same_crop and views \
                else None
            view, flip, box = self._spatial(img, geometry)
            view = pipeline(dict(img=view))['img']
            views.append(view)
            flips.append(flip)
            boxes.append(box)
        results['img'] = views
        results['img_shape'] = views[0].shape[:2]
        results['crop_boxes'] = np.array(boxes, dtype=np.float32)
        results['flips'] = np.array(flips, dtype=bool)
        results['img_width'] = int(img.shape[1])
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop={self.crop!r}, '
                f'flip_prob={self.flip_prob}, same_crop={self.same_crop}, '
                f'view_pipelines={self.view_pipelines!r})')
