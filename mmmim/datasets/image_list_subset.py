"""An ImageNet-style folder restricted to a list of file names.

Semi-supervised / few-shot ImageNet protocols (SimCLR's 1 % and 10 %
subsets, used by SIM's logistic-regression evaluation) ship a text file with
one image file name per line, e.g. ``n04235860_14959.JPEG``; the class folder
is the part before the first ``_``. Labels are the indices of the sorted class
folders under ``data_root/data_prefix`` (torchvision ``ImageFolder``'s rule,
which the references use), so they agree with a ``CustomDataset`` scan of the
validation folder.
"""
import os
import os.path as osp
from typing import List, Optional

from mmengine.dataset import BaseDataset

from mmpretrain.registry import DATASETS


@DATASETS.register_module()
class ImageListSubset(BaseDataset):
    """Images of ``data_root/data_prefix/<class>/<file>`` named in a list.

    Args:
        data_root (str): dataset root, e.g. ``'data/imagenet'``.
        subset_file (str): text file, one image file name per line
            (``<class folder>_<id>.<ext>``); blank lines are skipped.
        data_prefix (str): split folder under ``data_root``. Defaults to
            ``'train'``.
        classes (list[str], optional): class folder names in label order.
            Defaults to the sorted sub-folders of the split folder.
        pipeline (list): data pipeline.
        Other arguments are those of mmengine's ``BaseDataset``.
    """

    def __init__(self,
                 data_root: str,
                 subset_file: str,
                 data_prefix: str = 'train',
                 classes: Optional[List[str]] = None,
                 pipeline=(),
                 **kwargs) -> None:
        self.subset_file = subset_file
        self.split_dir = osp.join(data_root, data_prefix)
        self._classes = list(classes) if classes is not None else None
        super().__init__(
            data_root=data_root, pipeline=list(pipeline), **kwargs)

    def load_data_list(self) -> List[dict]:
        if not osp.isfile(self.subset_file):
            raise FileNotFoundError(
                f'subset file {self.subset_file} does not exist')
        classes = self._classes
        if classes is None:
            if not osp.isdir(self.split_dir):
                raise FileNotFoundError(
                    f'image folder {self.split_dir} does not exist')
            classes = sorted(e.name for e in os.scandir(self.split_dir)
                             if e.is_dir())
        index = {c: i for i, c in enumerate(classes)}
        with open(self.subset_file) as f:
            names = [line.strip() for line in f if line.strip()]
        data_list = []
        for name in names:
            folder = name.split('_')[0]
            if folder not in index:
                raise ValueError(f'{name} (in {self.subset_file}) names a '
                                 f'class folder {folder!r} that is not in '
                                 f'{self.split_dir}')
            data_list.append(
                dict(img_path=osp.join(self.split_dir, folder, name),
                     gt_label=index[folder]))
        self._metainfo['classes'] = tuple(classes)
        return data_list
