"""Fashion-MNIST read from the IDX ``.gz`` files of Debian's ``dataset-fashion-mnist``.

mmpretrain's own ``FashionMNIST`` wants the un-gzipped files and downloads them when
missing; here nothing can be downloaded, so this class reads the gzipped IDX files
in place, replicates the grey images to 3 channels and resizes them to ``img_size``.
"""
import os.path as osp
import warnings
from typing import List, Optional

import cv2
import numpy as np
from mmengine.dataset import BaseDataset

from mmpretrain.datasets.mnist import read_sn3_pascalvincent_tensor
from mmpretrain.registry import DATASETS

DEFAULT_FASHION_MNIST_ROOT = '/usr/share/datasets/fashion-mnist'
FASHION_MNIST_CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
                         'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot')


def read_idx_gz(path: str) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array: mmpretrain's
    MNIST reader, with a ``ValueError`` naming the file when it is not a
    complete IDX file."""
    try:
        with warnings.catch_warnings():  # a read-only buffer, read only here
            warnings.filterwarnings('ignore', 'The given NumPy array')
            return read_sn3_pascalvincent_tensor(path).numpy()
    except (AssertionError, KeyError, RuntimeError) as e:
        raise ValueError(f'{path} is not a complete IDX file '
                         f'({type(e).__name__}: {e})') from None


@DATASETS.register_module()
class FashionMNISTIDX(BaseDataset):
    """Fashion-MNIST from gzipped IDX files, as 3-channel ``img_size`` images.

    Args:
        data_root (str): Folder with ``{train,t10k}-{images-idx3,labels-idx1}
            -ubyte.gz``. Defaults to the Debian package's folder.
        split (str): ``'train'`` (60k) or ``'test'`` (10k).
        img_size (int): Side the 28 x 28 images are resized to (bilinear).
        num_samples (int, optional): Keep only the first ``num_samples`` items
            (quick runs and tests).
        pipeline (list): Data pipeline; each item starts with ``img`` (H, W, 3)
            uint8 and ``gt_label``.
    """
    METAINFO = dict(classes=FASHION_MNIST_CLASSES)
    _FILES = dict(train=('train-images-idx3-ubyte.gz',
                         'train-labels-idx1-ubyte.gz'),
                  test=('t10k-images-idx3-ubyte.gz',
                        't10k-labels-idx1-ubyte.gz'))

    def __init__(self,
                 data_root: str = DEFAULT_FASHION_MNIST_ROOT,
                 split: str = 'train',
                 img_size: int = 28,
                 num_samples: Optional[int] = None,
                 pipeline: list = (),
                 **kwargs):
        if split not in self._FILES:
            raise ValueError(f'split must be one of {list(self._FILES)}, '
                             f'got {split!r}')
        if img_size <= 0:
            raise ValueError(f'img_size must be positive, got {img_size}')
        self.split = split
        self.img_size = img_size
        self.num_samples = num_samples
        super().__init__(
            data_root=data_root,
            pipeline=list(pipeline),
            serialize_data=False,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        image_file, label_file = (osp.join(self.data_root, name)
                                  for name in self._FILES[self.split])
        for path in (image_file, label_file):
            if not osp.isfile(path):
                raise FileNotFoundError(
                    f'Fashion-MNIST file {path} not found. Install the Debian '
                    "package 'dataset-fashion-mnist' (tools/install.sh does) "
                    'or set data_root to a folder with the IDX .gz files.')
        images = read_idx_gz(image_file)
        labels = read_idx_gz(label_file).astype(np.int64)
        if len(images) != len(labels):
            raise ValueError(f'{image_file} has {len(images)} images but '
                             f'{label_file} has {len(labels)} labels')
        if self.num_samples is not None:
            images = images[:self.num_samples]
            labels = labels[:self.num_samples]
        self._images = images
        return [dict(gt_label=int(label), sample_idx=i)
                for i, label in enumerate(labels)]

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        img = self._images[info['sample_idx']]
        if self.img_size != img.shape[0]:
            img = cv2.resize(img, (self.img_size, self.img_size),
                             interpolation=cv2.INTER_LINEAR)
        img = np.ascontiguousarray(np.repeat(img[:, :, None], 3, axis=2))
        info.update(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2])
        return info
