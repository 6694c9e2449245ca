"""The Fashion-MNIST canvas sets: exact annotations, and mmdet's CocoMetric /
mmseg's IoUMetric running on them."""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from .conftest import requires_fashion_mnist

pytestmark = requires_fashion_mnist


@pytest.fixture(scope='module')
def canvas(tmp_path_factory):
    from mmmim.datasets.canvas import make_canvas_sets
    root = tmp_path_factory.mktemp('canvas')
    info = make_canvas_sets(str(root), num_train=6, num_val=6, size=64,
                            seed=1)
    return info


def _coco(info, split):
    with open(osp.join(info['coco_root'], 'annotations',
                       f'instances_{split}.json')) as f:
        return json.load(f)


def test_annotations_are_exact(canvas):
    from pycocotools import mask as mask_utils
    coco = _coco(canvas, 'val')
    assert len(coco['annotations']) == canvas['instances']['val']
    assert [c['name'] for c in coco['categories']][0] == 'T-shirt_top'
    for img in coco['images']:
        seg = cv2.imread(
            osp.join(canvas['ade_root'], 'annotations', 'validation',
                     img['file_name']), cv2.IMREAD_UNCHANGED)
        pic = cv2.imread(osp.join(canvas['coco_root'], 'val',
                                  img['file_name']))
        anns = [a for a in coco['annotations'] if a['image_id'] == img['id']]
        assert 1 <= len(anns) <= 3
        union = np.zeros_like(seg)
        for a in anns:
            m = mask_utils.decode(a['segmentation'])
            ys, xs = np.nonzero(m)
            # the box is the tight box of the mask, area its pixel count
            assert a['bbox'] == [xs.min(), ys.min(), xs.max() - xs.min() + 1,
                                 ys.max() - ys.min() + 1]
            assert a['area'] == m.sum()
            assert (union[m > 0] == 0).all()  # instances do not overlap
            union[m > 0] = a['category_id']  # 1 + class, as the class map
            # object pixels are brighter than the dark background
            assert pic[m > 0].mean() > 60 > pic[union == 0].mean()
        np.testing.assert_array_equal(seg, union)


def test_coco_metric_on_canvas(canvas, tmp_path):
    from mmdet.evaluation import CocoMetric
    from pycocotools import mask as mask_utils
    coco = _coco(canvas, 'val')
    ann_file = osp.join(canvas['coco_root'], 'annotations',
                        'instances_val.json')

    def run(keep):
        metric = CocoMetric(ann_file=ann_file, metric=['bbox', 'segm'],
                            outfile_prefix=str(tmp_path / 'res'))
        metric.dataset_meta = dict(classes=tuple(
            c['name'] for c in coco['categories']))
        samples = []
        for img in coco['images']:
            anns = [a for a in coco['annotations']
                    if a['image_id'] == img['id']][:keep]
            boxes = torch.tensor([[a['bbox'][0], a['bbox'][1],
                                   a['bbox'][0] + a['bbox'][2],
                                   a['bbox'][1] + a['bbox'][3]]
                                  for a in anns], dtype=torch.float32)
            masks = torch.from_numpy(np.stack(
                [mask_utils.decode(a['segmentation']) for a in anns])).bool()
            samples.append(dict(
                img_id=img['id'], ori_shape=(64, 64),
                pred_instances=dict(
                    bboxes=boxes.reshape(-1, 4),
                    scores=torch.ones(len(anns)),
                    labels=torch.tensor([a['category_id'] - 1
                                         for a in anns]),
                    masks=masks)))
        metric.process({}, samples)
        return metric.evaluate(size=len(samples))

    perfect = run(keep=3)
    assert perfect['coco/bbox_mAP'] == pytest.approx(1.0)
    assert perfect['coco/segm_mAP'] == pytest.approx(1.0)
    # only the first instance of each canvas: recall drops, so does mAP
    partial = run(keep=1)
    assert partial['coco/bbox_mAP'] < 1.0
    assert partial['coco/segm_mAP'] < 1.0


def test_iou_metric_on_canvas(canvas):
    from mmengine.structures import PixelData
    from mmseg.evaluation import IoUMetric
    from mmseg.structures import SegDataSample
    from mmmim.datasets.canvas import CANVAS_SEG_CLASSES

    maps = []
    for name in sorted(
            p for p in __import__('os').listdir(
                osp.join(canvas['ade_root'], 'annotations', 'validation'))):
        maps.append(torch.from_numpy(cv2.imread(
            osp.join(canvas['ade_root'], 'annotations', 'validation', name),
            cv2.IMREAD_UNCHANGED)).long())

    def run(pred_fn):
        metric = IoUMetric(iou_metrics=['mIoU'])
        metric.dataset_meta = dict(classes=CANVAS_SEG_CLASSES)
        samples = []
        for gt in maps:
            s = SegDataSample()
            s.gt_sem_seg = PixelData(data=gt[None])
            s.pred_sem_seg = PixelData(data=pred_fn(gt)[None])
            samples.append(s.to_dict())
        metric.process({}, samples)
        return metric.evaluate(size=len(samples))

    assert run(lambda g: g)['mIoU'] == pytest.approx(100.)
    # all background: accuracy = background share, IoU only for background
    bg = sum((g == 0).sum().item() for g in maps) / sum(g.numel()
                                                        for g in maps)
    res = run(torch.zeros_like)
    assert res['aAcc'] == pytest.approx(100 * bg, abs=0.01)
