"""A data preprocessor that decodes the batch's JPEGs on the model's device
(see ``mmmim/datasets/transforms/device_decode.py``)."""
import logging
import warnings
from typing import List

import torch
import torch.nn.functional as F
from mmengine.logging import print_log

from mmpretrain.models import SelfSupDataPreprocessor
from mmpretrain.registry import MODELS
from ..datasets.transforms.loading import ImageLoadError


def decode_jpegs(encoded: List[torch.Tensor], device: torch.device,
                 paths: List[str]) -> List[torch.Tensor]:
    """RGB uint8 images (C, H, W) on ``device`` from JPEG files' bytes (1-D
    uint8 CPU tensors): nvJPEG on CUDA (one batched call), libjpeg-turbo on
    the CPU.

    When the batch fails, its images are decoded one by one: an image the
    device's decoder rejects (nvJPEG refuses some valid files, e.g. unusual
    chroma subsampling) is decoded on the CPU with a warning naming it; one
    the CPU cannot decode either raises :class:`ImageLoadError` naming it.
    """
    from torchvision.io import ImageReadMode, decode_jpeg
    device = torch.device(device)
    with warnings.catch_warnings():
        # torchvision >= 0.29 points to TorchCodec; its decode still works
        warnings.simplefilter('ignore', DeprecationWarning)
        try:
            return decode_jpeg(encoded, mode=ImageReadMode.RGB,
                               device=device)
        except RuntimeError:
            pass  # find the file(s) below
        images = []
        for data, path in zip(encoded, paths):
            try:
                images.append(decode_jpeg(data, mode=ImageReadMode.RGB,
                                          device=device))
                continue
            except RuntimeError as e:
                device_error = e
            try:
                img = (decode_jpeg(data, mode=ImageReadMode.RGB)
                       if device.type != 'cpu' else None)
            except RuntimeError:
                img = None
            if img is None:
                raise ImageLoadError(
                    f'cannot decode {path}: {device_error}') from device_error
            print_log(f'{path}: not decodable on {device} ({device_error});'
                      ' decoded on the CPU', logger='current',
                      level=logging.WARNING)
            images.append(img.to(device))
        return images


def crop_resize(img: torch.Tensor, box, size) -> torch.Tensor:
    """``RandomResizedCrop``'s crop and resize of one decoded image (C, H,
    W): the box ``(x1, y1, x2, y2)`` (end exclusive) resized to ``size``
    (h, w) with antialiased bicubic interpolation (torch's port of Pillow's
    filter), as (1, C, h, w) float values, not yet rounded."""
    x1, y1, x2, y2 = (int(v) for v in box)
    return F.interpolate(img[None, :, y1:y2, x1:x2].float(), size=size,
                         mode='bicubic', align_corners=False, antialias=True)


@MODELS.register_module()
class DeviceDecodeDataPreprocessor(SelfSupDataPreprocessor):
    """``SelfSupDataPreprocessor`` that decodes, crops, resizes and flips
    the batch's images on the model's device.

    It takes batches of ``DeviceDecodeRandomResizedCrop`` collated with
    ``pseudo_collate`` (a list of per-image tensors). Each input is either

    - a JPEG file's bytes (1-D uint8): decoded to RGB on the device
      (``torchvision.io.decode_jpeg``: nvJPEG on CUDA, libjpeg-turbo on the
      CPU), cropped to ``data_sample.crop_bbox``, resized to
      ``data_sample.img_shape`` with antialiased bicubic interpolation,
      rounded as Pillow's uint8 result is, and flipped when
      ``data_sample.flip``; or
    - an image the data workers decoded (3-D, BGR as ``LoadImageChecked``
      gives it), converted to RGB when ``to_rgb`` is set.

    A file the device's decoder rejects is decoded on the CPU (with a
    warning naming it), one neither decodes raises ``ImageLoadError``
    naming it (:func:`decode_jpegs`). The batch is then normalised as
    ``SelfSupDataPreprocessor`` normalises it (``mean`` / ``std`` in RGB
    order with ``to_rgb=True``, as in the configs). Any other batch
    (stacked tensors, lists of views) goes to ``SelfSupDataPreprocessor``
    unchanged. Arguments are ``SelfSupDataPreprocessor``'s.
    """

    @staticmethod
    def per_image(inputs) -> bool:
        """Whether ``inputs`` is a list of per-image tensors: JPEG bytes
        (1-D) or decoded images (3-D), not views (4-D batches)."""
        return (isinstance(inputs, (list, tuple)) and len(inputs) > 0
                and all(isinstance(x, torch.Tensor) and x.dim() in (1, 3)
                        for x in inputs))

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = data['inputs']
        if not self.per_image(inputs):
            return super().forward(data, training)
        data_samples = data.get('data_samples')
        if data_samples is None or len(data_samples) != len(inputs):
            raise ValueError('DeviceDecodeDataPreprocessor needs one data '
                             'sample per image (crop box, flip, size)')
        data_samples = self.cast_data(data_samples)
        encoded = [i for i, x in enumerate(inputs) if x.dim() == 1]
        decoded = dict(zip(encoded, decode_jpegs(
            [inputs[i].cpu() for i in encoded], self._device,
            [data_samples[i].metainfo.get('img_path', f'image {i}')
             for i in encoded]))) if encoded else {}
        images, flipped = [], []
        for i, (x, sample) in enumerate(zip(inputs, data_samples)):
            if i in decoded:
                missing = [k for k in ('crop_bbox', 'flip', 'img_shape')
                           if k not in sample]
                if missing:
                    raise KeyError(
                        f'data sample {i} has no {missing}: pack them with '
                        "PackInputs(meta_keys=[..., 'img_shape', 'flip', "
                        "'crop_bbox'])")
                images.append(crop_resize(decoded[i], sample.crop_bbox,
                                          tuple(sample.img_shape[:2])))
                if sample.flip:
                    flipped.append(i)
            else:  # cropped and flipped by the workers
                img = self.cast_data(x)[None].float()
                images.append(img[:, [2, 1, 0]]
                              if self._channel_conversion else img)
        # Pillow's result is uint8: round and clip (the workers' images are
        # uint8 already); a few kernels for the batch, not per image
        batch = torch.cat(images).clamp_(0, 255).round_()
        if flipped:
            batch[flipped] = batch[flipped].flip(-1)
        if self._enable_normalize:
            batch = (batch - self.mean) / self.std
        return {'inputs': batch, 'data_samples': data_samples}
