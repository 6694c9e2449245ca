"""Patch masks (1 = masked, hidden from the encoder) shared by all algorithms."""
from typing import List, Optional, Union

import numpy as np
import torch


def masks_from_data_samples(data_samples: Optional[List]) -> Optional[torch.Tensor]:
    """Stack ``data_samples[i].mask`` into a (B, L) bool tensor, or None.

    The pipeline's mask (a MaskGenerator transform, packed by ``PackInputs``
    with ``algorithm_keys=['mask']``) is used exactly when every sample has one.
    """
    if not data_samples or not all('mask' in s for s in data_samples):
        return None
    mask = torch.stack([torch.as_tensor(s.mask) for s in data_samples])
    return mask.flatten(1).bool()


def random_patch_mask(batch_size: int,
                      num_patches: int,
                      mask_ratio: float,
                      device=None,
                      generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """MAE's per-image random mask, vectorised: (B, L) bool.

    Exactly ``L - int(L * (1 - mask_ratio))`` patches are masked in every image.
    """
    if not 0 < mask_ratio < 1:
        raise ValueError(f'mask_ratio must be in (0, 1), got {mask_ratio}')
    num_visible = int(num_patches * (1 - mask_ratio))
    noise = torch.rand(batch_size, num_patches, device=device,
                       generator=generator)
    masked_ids = noise.argsort(dim=1)[:, num_visible:]
    mask = torch.zeros(batch_size, num_patches, dtype=torch.bool,
                       device=device)
    return mask.scatter_(1, masked_ids, True)


def masked_per_image(mask: Union[torch.Tensor, np.ndarray],
                     strict: bool = True) -> Optional[int]:
    """The number of masked patches in every image of a (B, ...) mask.

    Images that mask different numbers raise a ``ValueError`` or, with
    ``strict=False``, give None (the modes that keep every patch accept such
    masks). Reading the count of a device tensor makes the host wait for the
    device: the algorithms count their pipeline masks in host memory (as
    arrays) and know the count of the masks they draw (see
    ``MIMSelfSupervisor.get_mask_and_count``).
    """
    if isinstance(mask, torch.Tensor):
        counts = mask.flatten(1).sum(dim=1)
        equal = not bool((counts != counts[0]).any())
    else:
        counts = np.asarray(mask).reshape(len(mask), -1).sum(axis=1)
        equal = bool((counts == counts[0]).all())
    if equal:
        return int(counts[0])
    if not strict:
        return None
    raise ValueError('every image in the batch must mask the same number of '
                     f'patches, got counts {counts.tolist()}')


def to_device(tensor: torch.Tensor, device) -> torch.Tensor:
    """Copy a host tensor to ``device`` without making the host wait (pinned
    memory, non-blocking) when the device is a GPU."""
    device = torch.device(device)
    if device.type == 'cuda' and tensor.device.type == 'cpu':
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def visible_first_order(mask: torch.Tensor,
                        num_masked: Optional[int] = None):
    """Indices putting visible patches first, then masked, each in raster order.

    Returns ``(ids_shuffle, ids_restore, num_visible)`` as MAE's decoder expects;
    every image must hide the same number of patches: ``num_masked`` when the
    caller knows it (no host-device synchronisation), else counted (and
    checked) in ``mask``.
    """
    mask = mask.flatten(1)
    if num_masked is None:
        num_masked = masked_per_image(mask)
    num_visible = mask.shape[1] - num_masked
    ids_shuffle = torch.argsort(mask.to(torch.uint8), dim=1, stable=True)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    return ids_shuffle, ids_restore, num_visible
