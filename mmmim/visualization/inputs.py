"""Images for the picture tools: files or Fashion-MNIST, normalised as in
training, and the normalisation to undo for display."""
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch


def load_images(paths: Optional[Sequence[str]], num_images: int,
                img_size: int) -> List[np.ndarray]:
    """uint8 RGB (H, W, 3) images at ``img_size``: the given files, or the
    first ``num_images`` Fashion-MNIST test images."""
    if paths:
        images = []
        for path in paths:
            if not osp.isfile(path):
                raise FileNotFoundError(f'image not found: {path}')
            img = mmcv.imread(path, channel_order='rgb')
            if img is None:
                raise ValueError(f'cannot read image {path}')
            images.append(mmcv.imresize(img, (img_size, img_size),
                                        interpolation='bicubic'))
        return images
    from mmmim.datasets import FashionMNISTIDX
    dataset = FashionMNISTIDX(split='test', img_size=img_size,
                              num_samples=num_images)
    return [dataset.get_data_info(i)['img'] for i in range(len(dataset))]


def preprocess(model, images: Sequence[np.ndarray]
               ) -> Tuple[torch.Tensor, List[float], List[float]]:
    """The model's normalised input batch, and the mean / std to undo."""
    batch = torch.stack([torch.from_numpy(img).permute(2, 0, 1)
                         for img in images]).float()
    pre = model.data_preprocessor
    inputs = pre(dict(inputs=[batch], data_samples=None), False)['inputs'][0]
    if pre._enable_normalize:
        return inputs, pre.mean.flatten().tolist(), pre.std.flatten().tolist()
    return inputs, [0.] * 3, [1.] * 3
