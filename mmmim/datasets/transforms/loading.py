"""Image loading that names the bad file, or skips it when told to."""
from typing import Optional

import mmcv
import numpy as np
import simplejpeg
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from mmengine.logging import print_log

from mmpretrain.registry import TRANSFORMS


class ImageLoadError(OSError):
    """An image file that cannot be decoded (unreadable, truncated)."""


def check_image_bytes(img_bytes: bytes) -> Optional[str]:
    """Why these bytes are not a complete image, or None if they look fine.

    cv2 decodes a truncated JPEG without an error, filling the missing part
    with grey; a JPEG whose data does not end with the end-of-image marker
    (FF D9) is reported as truncated instead.
    """
    if not img_bytes:
        return 'empty file'
    if img_bytes[:2] == b'\xff\xd8' and \
            img_bytes.rstrip(b'\x00\r\n ')[-2:] != b'\xff\xd9':
        return 'truncated JPEG (no end-of-image marker)'
    return None


def grey_filled_jpeg(img_bytes: bytes, img: np.ndarray) -> Optional[str]:
    """Why a decoded JPEG is grey-filled (compressed data missing in the
    middle of the scan, the end-of-image marker present), or None.

    libjpeg decodes missing data as mid-grey, warns on stderr and returns
    the image. Its last block is then exactly 128 in every channel: only
    for such images is the file decoded again, strictly (libjpeg-turbo via
    simplejpeg, which turns the warning into an error), so the check costs
    nothing for the others. Files that decode cleanly pass, however grey.
    """
    if img_bytes[:2] != b'\xff\xd8' or img.dtype != np.uint8 or \
            not (img[-4:, -4:] == 128).all():
        return None
    try:
        simplejpeg.decode_jpeg(img_bytes, colorspace='gray', strict=True)
    except ValueError as e:
        # libjpeg's warnings about missing data, not e.g. an unsupported
        # colour conversion
        if 'Corrupt JPEG data' in str(e) or 'Premature end' in str(e):
            return f'corrupt JPEG, decoded grey-filled ({e})'
    return None


@TRANSFORMS.register_module()
class LoadImageChecked(LoadImageFromFile):
    """``LoadImageFromFile`` that fails with the file's name, or skips it.

    Grayscale, RGBA (alpha dropped) and 16-bit images (scaled to 8 bit) are
    decoded to 3-channel uint8 by the default ``color_type='color'``. An
    unreadable, empty or truncated file, or a JPEG whose compressed data
    stops mid-scan before its end-of-image marker (:func:`grey_filled_jpeg`),
    raises :class:`ImageLoadError` naming the file; with ``on_error='skip'`` a warning naming it is logged, the
    transform's ``num_skipped`` counter grows, and ``None`` is returned, so
    the dataset draws another sample (mmengine's ``BaseDataset`` refetch).

    Args:
        on_error (str): ``'raise'`` (default) or ``'skip'``.
        Other arguments are those of ``LoadImageFromFile``.
    """

    def __init__(self, *args, on_error: str = 'raise', **kwargs):
        super().__init__(*args, **kwargs)
        if on_error not in ('raise', 'skip'):
            raise ValueError(f"on_error must be 'raise' or 'skip', "
                             f'got {on_error!r}')
        self.on_error = on_error
        self.num_skipped = 0

    def _fail(self, filename: str, reason: str):
        message = f'cannot load image {filename}: {reason}'
        if self.on_error == 'raise':
            raise ImageLoadError(message)
        self.num_skipped += 1
        print_log(f'{message}; skipped ({self.num_skipped} skipped so far)',
                  logger='current', level=30)
        return None

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        try:
            img_bytes = fileio.get(filename, backend_args=self.backend_args)
        except Exception as e:  # missing file, permissions, backend errors
            return self._fail(filename, f'{type(e).__name__}: {e}')
        reason = check_image_bytes(img_bytes)
        if reason is not None:
            return self._fail(filename, reason)
        try:
            img = mmcv.imfrombytes(
                img_bytes, flag=self.color_type, backend=self.imdecode_backend)
        except Exception as e:
            return self._fail(filename, f'{type(e).__name__}: {e}')
        if img is None or img.size == 0:
            return self._fail(filename, 'not a decodable image')
        reason = grey_filled_jpeg(img_bytes, img)
        if reason is not None:
            return self._fail(filename, reason)
        if img.dtype == np.uint16:  # 'unchanged' flags keep 16 bit
            img = (img // 257).astype(np.uint8)
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results
