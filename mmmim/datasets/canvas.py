"""Fashion-MNIST objects pasted onto canvases: tiny detection / segmentation
sets with exact annotations, for tests and CPU demos of the transfer configs.

Each canvas is a dark, lightly noisy square with 1 to ``max_objects``
Fashion-MNIST items, each resized to a random side in ``obj_size`` and
pasted at a random position without overlapping the others. An item's
instance mask is its pixels brighter than ``mask_threshold``; the box is the
tight box of that mask; its category is its Fashion-MNIST class.

Written sets (``make_canvas_sets``):

- COCO (mmdet ``CocoDataset``)::

    <root>/coco/{train,val}/000000.png
    <root>/coco/annotations/instances_{train,val}.json  (RLE masks)

- ADE-style class maps (mmseg ``BaseSegDataset``)::

    <root>/ade/images/{training,validation}/000000.png
    <root>/ade/annotations/{training,validation}/000000.png
    (uint8, 0 = background, 1 + Fashion-MNIST class for objects)
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from .fashion_mnist import (DEFAULT_FASHION_MNIST_ROOT, FASHION_MNIST_CLASSES,
                            read_idx_gz)

# Category names without '/', usable as file-system-safe metainfo.
CANVAS_CLASSES = tuple(c.replace('/', '_') for c in FASHION_MNIST_CLASSES)
CANVAS_SEG_CLASSES = ('background', ) + CANVAS_CLASSES


def _place(rng: np.random.Generator, size: int, side: int,
           boxes: List[Tuple[int, int, int, int]],
           tries: int = 50) -> Optional[Tuple[int, int]]:
    for _ in range(tries):
        y, x = rng.integers(0, size - side + 1, size=2)
        if all(x + side <= bx0 or bx1 <= x or y + side <= by0 or by1 <= y
               for bx0, by0, bx1, by1 in boxes):
            return int(y), int(x)
    return None


def make_canvas(rng: np.random.Generator, images: np.ndarray,
                labels: np.ndarray, size: int = 64,
                obj_size: Tuple[int, int] = (20, 32), max_objects: int = 3,
                mask_threshold: int = 20, noise: float = 8.
                ) -> Tuple[np.ndarray, List[Dict]]:
    """One canvas and its instances.

    Args:
        rng: numpy random generator.
        images (np.ndarray): (N, 28, 28) uint8 Fashion-MNIST images.
        labels (np.ndarray): (N, ) class ids.
        size (int): canvas side.
        obj_size (tuple): min and max object side (inclusive).
        max_objects (int): at most this many objects (at least one).
        mask_threshold (int): object pixels are those above it.
        noise (float): std of the background's Gaussian noise.

    Returns:
        tuple: (H, W, 3) uint8 image and a list of instances, each a dict
        with ``label`` (0-based class), ``mask`` (H, W) uint8 and ``bbox``
        [x0, y0, x1, y1] (exclusive right/bottom, in pixels).
    """
    canvas = np.clip(rng.normal(20., noise, (size, size)), 0, 255)
    instances, boxes = [], []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        side = int(rng.integers(obj_size[0], obj_size[1] + 1))
        pos = _place(rng, size, side, boxes)
        if pos is None:
            continue
        idx = int(rng.integers(len(images)))
        obj = cv2.resize(images[idx], (side, side),
                         interpolation=cv2.INTER_LINEAR)
        obj_mask = obj > mask_threshold
        if obj_mask.sum() < 4:
            continue
        y, x = pos
        region = canvas[y:y + side, x:x + side]
        region[obj_mask] = obj[obj_mask]
        mask = np.zeros((size, size), np.uint8)
        mask[y:y + side, x:x + side] = obj_mask
        ys, xs = np.nonzero(mask)
        bbox = [int(xs.min()), int(ys.min()), int(xs.max()) + 1,
                int(ys.max()) + 1]
        boxes.append((x, y, x + side, y + side))
        instances.append(dict(label=int(labels[idx]), mask=mask, bbox=bbox))
    img = np.repeat(canvas.astype(np.uint8)[..., None], 3, axis=2)
    return img, instances


def _coco_json(records: List[Tuple[str, np.ndarray, List[Dict]]]) -> dict:
    from pycocotools import mask as mask_utils
    images, annotations = [], []
    for img_id, (file_name, img, instances) in enumerate(records, start=1):
        h, w = img.shape[:2]
        images.append(dict(id=img_id, file_name=file_name, height=h,
                           width=w))
        for inst in instances:
            rle = mask_utils.encode(np.asfortranarray(inst['mask']))
            rle['counts'] = rle['counts'].decode('ascii')
            x0, y0, x1, y1 = inst['bbox']
            annotations.append(
                dict(id=len(annotations) + 1, image_id=img_id,
                     category_id=inst['label'] + 1, segmentation=rle,
                     area=float(inst['mask'].sum()),
                     bbox=[x0, y0, x1 - x0, y1 - y0], iscrowd=0))
    categories = [dict(id=i + 1, name=n) for i, n in enumerate(CANVAS_CLASSES)]
    return dict(images=images, annotations=annotations,
                categories=categories)


def make_canvas_sets(out_dir: str,
                     num_train: int = 200,
                     num_val: int = 50,
                     size: int = 64,
                     obj_size: Tuple[int, int] = (20, 32),
                     max_objects: int = 3,
                     seed: int = 0,
                     data_root: str = DEFAULT_FASHION_MNIST_ROOT) -> dict:
    """Write the COCO and the ADE-style canvas sets under ``out_dir``.

    Training canvases use Fashion-MNIST's train split, validation canvases
    its test split.

    Returns:
        dict: paths (``coco_root``, ``ade_root``) and instance counts.
    """
    rng = np.random.default_rng(seed)
    coco_root, ade_root = osp.join(out_dir, 'coco'), osp.join(out_dir, 'ade')
    os.makedirs(osp.join(coco_root, 'annotations'), exist_ok=True)
    counts = {}
    for split, n, fm_split, ade_split in (
            ('train', num_train, 'train', 'training'),
            ('val', num_val, 't10k', 'validation')):
        images = read_idx_gz(
            osp.join(data_root, f'{fm_split}-images-idx3-ubyte.gz'))
        labels = read_idx_gz(
            osp.join(data_root, f'{fm_split}-labels-idx1-ubyte.gz'))
        for d in (osp.join(coco_root, split),
                  osp.join(ade_root, 'images', ade_split),
                  osp.join(ade_root, 'annotations', ade_split)):
            os.makedirs(d, exist_ok=True)
        records = []
        for i in range(n):
            img, instances = make_canvas(rng, images, labels, size, obj_size,
                                         max_objects)
            name = f'{i:06d}.png'
            cv2.imwrite(osp.join(coco_root, split, name), img)
            cv2.imwrite(osp.join(ade_root, 'images', ade_split, name), img)
            seg = np.zeros(img.shape[:2], np.uint8)
            for inst in instances:
                seg[inst['mask'] > 0] = inst['label'] + 1
            cv2.imwrite(osp.join(ade_root, 'annotations', ade_split, name),
                        seg)
            records.append((name, img, instances))
        with open(
                osp.join(coco_root, 'annotations', f'instances_{split}.json'),
                'w') as f:
            json.dump(_coco_json(records), f)
        counts[split] = sum(len(r[2]) for r in records)
    return dict(coco_root=coco_root, ade_root=ade_root, instances=counts)
