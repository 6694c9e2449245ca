"""Load + RandomResizedCrop in one step, decoding a JPEG at the smallest
DCT scale (1/2, 1/4, 1/8) that still covers the crop at its output size.

Decoding and resizing are most of the ImageNet pre-training pipeline's time,
and a large photo's crop is shrunk to 224 px anyway. libjpeg decodes at 1/2,
1/4 or 1/8 size directly from the DCT coefficients, for a fraction of the
work, and the resize then starts from fewer pixels. This transform draws the
crop box as ``RandomResizedCrop`` does (in full-resolution pixels, from the
size in the file's header), asks for the smallest such scale at which the
crop is still at least its output size (the final resize never enlarges),
and resizes the box's footprint on the reduced image. When no reduction
applies (crops under twice the output size, e.g. most of a 500 x 375 photo's
at 224 px) it computes exactly what the two transforms compute.
"""
import io

import cv2
import mmcv
import numpy as np
from mmcv.image.geometric import pillow_interp_codes
from mmengine import fileio
from PIL import Image

from mmpretrain.datasets.transforms import RandomResizedCrop
from mmpretrain.registry import TRANSFORMS
from .loading import LoadImageChecked, check_image_bytes

_REDUCED_FLAGS = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                  8: cv2.IMREAD_REDUCED_COLOR_8}
_EXIF_ORIENTATION = 0x0112


@TRANSFORMS.register_module()
class DecodeRandomResizedCrop(RandomResizedCrop):
    """``LoadImageChecked`` followed by mmpretrain's ``RandomResizedCrop``,
    with reduced-size JPEG decoding.

    The crop parameters are drawn exactly as ``RandomResizedCrop`` draws
    them (same random calls, same full-resolution image size), so the crops
    have the same distribution. The JPEG is decoded by cv2 at 1/s of its
    size (s = 2, 4, 8: the largest with the crop still at least ``scale``
    on both sides after the reduction) and the crop box's footprint on the
    reduced image (fractional coordinates) resized to ``scale`` by Pillow,
    as ``RandomResizedCrop`` resizes; with s = 1 the result is exactly the
    two transforms'. The image is BGR like ``LoadImageChecked``'s. Files
    that are not JPEG, or carry an EXIF rotation (which cv2's decoder
    applies), go through the two original transforms.
    ``results['crop_bbox']`` holds the box in full-resolution pixels
    ``(x1, y1, x2, y2)``, end exclusive, ``results['decode_reduction']`` s.

    Use it in place of the first two transforms of a pipeline::

        dict(type='DecodeRandomResizedCrop', scale=224,
             crop_ratio_range=(0.2, 1.0), backend='pillow',
             interpolation='bicubic')

    Args:
        on_error (str): ``LoadImageChecked``'s: ``'raise'`` or ``'skip'``.
        backend_args (dict, optional): File backend arguments.
        reduced_decode (bool): Decode at reduced size when possible
            (``False``: full-size decoding, for comparison).
        **kwargs: ``RandomResizedCrop``'s arguments (``backend`` must be
            ``'pillow'``, which resizes here).
    """

    def __init__(self, *args, on_error: str = 'raise',
                 backend_args=None, reduced_decode: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if self.backend != 'pillow':
            raise ValueError("DecodeRandomResizedCrop resizes with Pillow: "
                             f"backend must be 'pillow', got {self.backend!r}")
        self.loader = LoadImageChecked(on_error=on_error,
                                       backend_args=backend_args)
        self.reduced_decode = reduced_decode

    def read_header(self, filename: str):
        """The file's bytes, its image header (Pillow's, which reads only
        the header), whether EXIF rotates it, and why it cannot be used
        (None if it can)."""
        try:
            img_bytes = fileio.get(filename,
                                   backend_args=self.loader.backend_args)
            reason = check_image_bytes(img_bytes)
            header = Image.open(io.BytesIO(img_bytes))
            rotated = header.getexif().get(_EXIF_ORIENTATION, 1) != 1
        except Exception as e:  # missing file, permissions, not an image
            return None, None, False, f'{type(e).__name__}: {e}'
        return img_bytes, header, rotated, reason

    def draw_crop(self, width: int, height: int):
        """``RandomResizedCrop``'s box for an image of this size (it reads
        only the image's shape): ``offset_h, offset_w, crop_h, crop_w``."""
        return self.rand_crop_params(
            np.empty((height, width, 0), dtype=np.uint8))

    def load_and_crop(self, results: dict):
        """The config's two transforms (``LoadImageChecked``,
        ``RandomResizedCrop``), for files decoded as they are."""
        results = self.loader(results)
        return None if results is None else super().transform(results)

    def transform(self, results: dict):
        filename = results['img_path']
        img_bytes, header, rotated, reason = self.read_header(filename)
        if reason is not None:
            return self.loader._fail(filename, reason)
        if header.format != 'JPEG' or rotated:
            # cv2 decodes (and rotates) these
            return self.load_and_crop(results)

        width, height = header.size
        offset_h, offset_w, crop_h, crop_w = self.draw_crop(width, height)
        out_h, out_w = self.scale
        reduction = 1
        while (self.reduced_decode and reduction < 8
               and crop_w >= 2 * reduction * out_w
               and crop_h >= 2 * reduction * out_h):
            reduction *= 2
        buffer = np.frombuffer(img_bytes, np.uint8)
        if reduction == 1:  # LoadImageChecked's decode, RandomResizedCrop's
            img = mmcv.imfrombytes(img_bytes, flag=self.loader.color_type,
                                   backend=self.loader.imdecode_backend)
            if img is None:
                return self.loader._fail(filename, 'not a decodable image')
            img = mmcv.imcrop(img, np.array([
                offset_w, offset_h, offset_w + crop_w - 1,
                offset_h + crop_h - 1]))
            img = mmcv.imresize(img, (out_w, out_h),
                                interpolation=self.interpolation,
                                backend=self.backend)
        else:
            img = cv2.imdecode(buffer, _REDUCED_FLAGS[reduction])
            if img is None:
                return self.loader._fail(filename, 'not a decodable image')
            sx, sy = img.shape[1] / width, img.shape[0] / height
            box = (offset_w * sx, offset_h * sy, (offset_w + crop_w) * sx,
                   (offset_h + crop_h) * sy)
            img = np.asarray(Image.fromarray(img).resize(
                (out_w, out_h), pillow_interp_codes[self.interpolation],
                box=box))
        results['img'] = img
        results['img_shape'] = img.shape  # as RandomResizedCrop sets it
        results['ori_shape'] = (height, width)
        results['crop_bbox'] = (offset_w, offset_h, offset_w + crop_w,
                                offset_h + crop_h)
        results['decode_reduction'] = reduction
        return results

    def __repr__(self):
        return (super().__repr__()[:-1] +
                f', reduced_decode={self.reduced_decode})')
