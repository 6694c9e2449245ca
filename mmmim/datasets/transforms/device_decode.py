"""Load + RandomResizedCrop + RandomFlip with the JPEG decoded on the model's
device.

A GPU can train faster than a machine's cores decode JPEGs (an H200 at
MAE ViT-B's goal speed takes about 5 600 images/s, some 17 cores of cv2
decoding of small JPEGs: docs/benchmarks.md). This transform leaves the
decoding to the data preprocessor on the device
(``DeviceDecodeDataPreprocessor``, nvJPEG through
``torchvision.io.decode_jpeg``): the data workers only read the file, draw
the crop box from the size in its header and the flip, and pass the file's
bytes on.
"""
import mmcv
import numpy as np
import simplejpeg

from mmpretrain.registry import TRANSFORMS
from .reduced_decode import DecodeRandomResizedCrop

#: JPEG colour spaces the device decoder takes (CMYK / YCCK ones, a few in
#: ImageNet, are decoded by the workers)
DEVICE_COLORSPACES = ('YCbCr', 'Gray')


@TRANSFORMS.register_module()
class DeviceDecodeRandomResizedCrop(DecodeRandomResizedCrop):
    """``LoadImageChecked``, ``RandomResizedCrop`` and ``RandomFlip`` with
    the decode, crop, resize and flip done by ``DeviceDecodeDataPreprocessor``
    on the model's device.

    The crop box and the flip are drawn exactly as ``RandomResizedCrop``
    and ``RandomFlip(prob=flip_prob)`` draw them (the same random calls, the
    box in full-resolution pixels from the header's size), so with the same
    seed the crops are those of the config's three transforms. For a JPEG
    in YCbCr or grey, ``results['img']`` is the file's bytes (a 1-D uint8
    array), ``results['crop_bbox']`` the box ``(x1, y1, x2, y2)`` (end
    exclusive), ``results['flip']`` the flip and ``results['img_shape']``
    the output size. Other files (not JPEG, CMYK, EXIF-rotated) are decoded,
    cropped and flipped here, as ``DecodeRandomResizedCrop`` and
    ``RandomFlip`` do (BGR, like ``LoadImageChecked``'s images).

    Pack with ``PackInputs(meta_keys=[..., 'img_shape', 'flip',
    'crop_bbox'])``, collate with ``pseudo_collate`` (the byte strings differ
    in length) and preprocess with ``DeviceDecodeDataPreprocessor``:
    ``configs/mae/mae-vit-base_pixel_1600e_device-decode.py`` shows the
    three changes. The device's resize is antialiased bicubic like
    Pillow's, so ``interpolation`` must be ``'bicubic'``.

    Args:
        flip_prob (float): Probability of a horizontal flip (the pipeline
            must not flip again). Defaults to 0.5.
        on_error (str): ``LoadImageChecked``'s: ``'raise'`` or ``'skip'``,
            for what the workers see without decoding (unreadable, empty,
            truncated, not an image). A file neither the device's decoder
            nor the CPU's decodes stops the step with an error naming it
            (``DeviceDecodeDataPreprocessor``); a JPEG whose compressed
            data stops mid-scan (its end marker present), which
            ``LoadImageChecked`` finds by decoding, is decoded grey-filled
            on the CPU, as cv2 decodes it.
        backend_args (dict, optional): File backend arguments.
        **kwargs: ``RandomResizedCrop``'s arguments.
    """

    def __init__(self, *args, flip_prob: float = 0.5, **kwargs):
        super().__init__(*args, **kwargs)
        if self.interpolation != 'bicubic':
            raise ValueError('DeviceDecodeRandomResizedCrop resizes on the '
                             "device with bicubic interpolation: "
                             f"interpolation must be 'bicubic', got "
                             f'{self.interpolation!r}')
        if not 0 <= flip_prob <= 1:
            raise ValueError(f'flip_prob must be in [0, 1], got {flip_prob}')
        self.flip_prob = flip_prob

    def draw_flip(self) -> bool:
        # RandomFlip's np.random.choice(['horizontal', None], p=[prob,
        # 1 - prob]) takes one uniform draw and flips when it is below prob
        return bool(np.random.random_sample() < self.flip_prob)

    def transform(self, results: dict):
        filename = results['img_path']
        img_bytes, header, rotated, reason = self.read_header(filename)
        if reason is not None:
            return self.loader._fail(filename, reason)
        colorspace = None
        if header.format == 'JPEG' and not rotated:
            try:
                height, width, colorspace, _ = \
                    simplejpeg.decode_jpeg_header(img_bytes)
            except ValueError:  # libjpeg-turbo cannot read the header
                colorspace = None
        if colorspace not in DEVICE_COLORSPACES:
            results = super().transform(results)  # decoded here
            if results is None:
                return None
            flip = self.draw_flip()
            if flip:
                results['img'] = mmcv.imflip(results['img'], 'horizontal')
        else:
            offset_h, offset_w, crop_h, crop_w = self.draw_crop(width,
                                                                height)
            flip = self.draw_flip()
            # a copy: torch warns about (and must not write to) read-only
            # numpy memory
            results['img'] = np.frombuffer(img_bytes, np.uint8).copy()
            results['img_shape'] = tuple(self.scale)
            results['ori_shape'] = (height, width)
            results['crop_bbox'] = (offset_w, offset_h, offset_w + crop_w,
                                    offset_h + crop_h)
        results['flip'] = flip
        results['flip_direction'] = 'horizontal' if flip else None
        return results

    def __repr__(self):
        return super().__repr__()[:-1] + f', flip_prob={self.flip_prob})'
