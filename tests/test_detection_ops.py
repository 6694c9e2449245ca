"""RoIAlign and NMS on any device: torchvision's kernels (the route taken on
CUDA when mmcv was built without CUDA) give mmcv's results on the same
inputs, and the Mask R-CNN configs' Portable* parts run without calling any
mmcv kernel on that route."""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch

# the reference side is mmcv's compiled kernels (tools/install.sh builds them;
# mmcv-lite, e.g. on a GPU machine fed by tools/gpu_prepare.sh, has none)
pytest.importorskip('mmcv._ext', reason='mmcv has no compiled ops (mmcv-lite)')
from mmcv import ops as mmcv_ops  # noqa: E402
from mmengine import Config  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402

from mmmim.models.detection import ops  # noqa: E402
from mmmim.models.detection.heads import bitmap_mask_targets  # noqa: E402
from .conftest import requires_fashion_mnist  # noqa: E402


@pytest.fixture
def torchvision_route(monkeypatch):
    """Pretend mmcv has no kernels for any device (as for CUDA tensors with
    mmcv's CPU build): every portable op takes torchvision's kernels."""
    monkeypatch.setattr(ops, '_mmcv_kernel_device_types', frozenset)
    assert not ops.mmcv_has_kernels('cpu')


def random_rois(n, batch, size, generator):
    """(n, 5) rois, some reaching outside the map, some tiny."""
    xy = torch.rand(n, 2, generator=generator) * (size + 20) - 10
    wh = torch.rand(n, 2, generator=generator) * size * 0.8 + 0.3
    idx = torch.randint(0, batch, (n, 1), generator=generator).float()
    return torch.cat([idx, xy, xy + wh], dim=1)


def test_the_installed_mmcv_has_cpu_kernels():
    # the reference side of every comparison below
    assert ops.mmcv_has_kernels('cpu')
    assert ops.mmcv_has_kernels('cuda') == (
        mmcv_ops.get_compiling_cuda_version() != 'not available')


@pytest.mark.parametrize('aligned', [True, False])
@pytest.mark.parametrize('sampling_ratio', [0, 2])
@pytest.mark.parametrize('spatial_scale', [1 / 4, 1 / 16])
def test_roi_align_equals_mmcv(aligned, sampling_ratio, spatial_scale,
                               monkeypatch):
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 8, 24, 28, generator=g)
    rois = random_rois(40, 2, 28 / spatial_scale, g)
    weights = torch.randn(40, 8, 7, 7, generator=g)

    def run():
        x = feats.clone().requires_grad_()
        out = ops.roi_align(x, rois, 7, spatial_scale, sampling_ratio, 'avg',
                            aligned)
        grad, = torch.autograd.grad((out * weights).sum(), x)
        return out, grad

    out_mmcv, grad_mmcv = run()
    monkeypatch.setattr(ops, '_mmcv_kernel_device_types', frozenset)
    out_tv, grad_tv = run()
    assert out_mmcv.abs().sum() > 0
    torch.testing.assert_close(out_tv, out_mmcv, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad_tv, grad_mmcv, rtol=1e-5, atol=1e-6)


def test_portable_roi_align_layer(torchvision_route):
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(1, 4, 16, 16, generator=g)
    rois = random_rois(10, 1, 64, g)
    ref = mmcv_ops.RoIAlign((7, 7), 0.25, 0, aligned=True)
    layer = ops.PortableRoIAlign((7, 7), 0.25, 0, aligned=True)
    assert layer.output_size == ref.output_size == (7, 7)
    torch.testing.assert_close(layer(feats, rois), ref(feats, rois))
    with pytest.raises(NotImplementedError, match='pool_mode'):
        ops.PortableRoIAlign(7, 0.25, pool_mode='max')(feats, rois)


def tied_boxes(n, generator):
    """Integer boxes (exact overlaps) with few distinct scores (many ties)."""
    xy = torch.randint(0, 60, (n, 2), generator=generator).float()
    wh = torch.randint(1, 30, (n, 2), generator=generator).float()
    scores = torch.randint(0, 6, (n, ), generator=generator).float() / 6
    return torch.cat([xy, xy + wh], dim=1), scores


@pytest.mark.parametrize('offset', [0, 1])
@pytest.mark.parametrize('score_threshold,max_num', [(0, -1), (0.3, 25)])
def test_nms_equals_mmcv(offset, score_threshold, max_num, monkeypatch):
    g = torch.Generator().manual_seed(2)
    cases = [tied_boxes(300, g) for _ in range(5)]
    # real-valued boxes and distinct scores too
    xy = torch.rand(200, 2, generator=g) * 50
    cases.append((torch.cat([xy, xy + torch.rand(200, 2, generator=g) * 30 +
                             .5], 1), torch.rand(200, generator=g)))

    def run():
        return [ops.nms(b, s, 0.5, offset, score_threshold, max_num)
                for b, s in cases]

    ref = run()
    monkeypatch.setattr(ops, '_mmcv_kernel_device_types', frozenset)
    for (dets, keep), (dets_ref, keep_ref) in zip(run(), ref):
        assert 0 < len(keep_ref) < 300
        torch.testing.assert_close(keep, keep_ref, rtol=0, atol=0)
        torch.testing.assert_close(dets, dets_ref, rtol=0, atol=0)


@pytest.mark.parametrize('route', ['mmcv', 'torchvision'])
def test_offset_one_widths(route, monkeypatch):
    # 2 px boxes sharing one column: IoU 2/6 with widths x2 - x1, 6/12 with
    # mmcv's legacy widths x2 - x1 + 1 (offset=1)
    if route == 'torchvision':
        monkeypatch.setattr(ops, '_mmcv_kernel_device_types', frozenset)
    boxes = torch.tensor([[0., 0., 2., 2.], [1., 0., 3., 2.]])
    scores = torch.tensor([0.9, 0.8])
    assert ops.nms(boxes, scores, 0.4, offset=0)[1].tolist() == [0, 1]
    assert ops.nms(boxes, scores, 0.4, offset=1)[1].tolist() == [0]


@pytest.mark.parametrize('class_agnostic', [False, True])
@pytest.mark.parametrize('split_thr', [10000, 100])
def test_batched_nms_equals_mmcv(class_agnostic, split_thr, monkeypatch):
    g = torch.Generator().manual_seed(3)
    boxes, scores = tied_boxes(400, g)
    classes = torch.randint(0, 4, (400, ), generator=g)
    cfg = dict(type='nms', iou_threshold=0.45, split_thr=split_thr)
    dets_ref, keep_ref = mmcv_ops.batched_nms(boxes, scores, classes, cfg,
                                              class_agnostic)
    monkeypatch.setattr(ops, '_mmcv_kernel_device_types', frozenset)
    dets, keep = ops.batched_nms(boxes, scores, classes, cfg, class_agnostic)
    assert cfg['type'] == 'nms'  # the caller's config is not changed
    torch.testing.assert_close(keep, keep_ref, rtol=0, atol=0)
    torch.testing.assert_close(dets, dets_ref, rtol=0, atol=0)
    # within a class no two kept boxes overlap above the threshold
    for c in range(4):
        kept = boxes[keep][classes[keep] == c]
        iou = ops.torchvision.ops.box_iou(kept, kept).fill_diagonal_(0)
        assert iou.max() <= 0.45


@pytest.mark.parametrize('binarize', [True, False])
def test_bitmap_mask_targets_equal_mmdet(binarize, monkeypatch):
    from mmdet.structures.mask import BitmapMasks, mask_target
    rng = np.random.default_rng(0)
    gt = BitmapMasks((rng.random((3, 40, 50)) > 0.6).astype(np.uint8), 40,
                     50)
    g = torch.Generator().manual_seed(4)
    proposals = random_rois(12, 1, 45, g)[:, 1:]
    inds = torch.randint(0, 3, (12, ), generator=g)
    cfg = Config(dict(mask_size=14, soft_mask_target=not binarize))
    ref = mask_target([proposals], [inds], [gt], cfg)  # mmdet, mmcv kernel
    monkeypatch.setattr(ops, '_mmcv_kernel_device_types', frozenset)
    ours = bitmap_mask_targets(proposals, inds, gt, 14, binarize)
    assert ours.shape == ref.shape == (12, 14, 14)
    if binarize:
        assert set(ref.unique().tolist()) == {0.0, 1.0}
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)


# ------------------------------------------------- the Mask R-CNN configs
MASK_RCNN_CONFIGS = sorted(
    p.name for p in Path('configs/benchmarks/mask_rcnn').glob('*.py'))


@pytest.mark.parametrize('name', MASK_RCNN_CONFIGS)
def test_every_mask_rcnn_config_uses_the_portable_parts(name):
    cfg = Config.fromfile(f'configs/benchmarks/mask_rcnn/{name}')
    assert 'mmmim.models.detection' in cfg.custom_imports.imports
    roi = cfg.model.roi_head
    # Cascade R-CNN: one box head per stage
    bbox_heads = roi.bbox_head if isinstance(roi.bbox_head, list) \
        else [roi.bbox_head]
    assert [cfg.model.rpn_head.type, roi.bbox_roi_extractor.type,
            roi.mask_roi_extractor.type, roi.mask_head.type] == [
                'PortableRPNHead', 'PortableSingleRoIExtractor',
                'PortableSingleRoIExtractor', 'PortableFCNMaskHead']
    assert {h.type for h in bbox_heads} == {'PortableShared4Conv1FCBBoxHead'}
    assert roi.bbox_roi_extractor.roi_layer.type == 'RoIAlign'


@pytest.fixture(scope='module')
def canvas(tmp_path_factory):
    from mmmim.datasets.canvas import make_canvas_sets
    return make_canvas_sets(str(tmp_path_factory.mktemp('canvas')),
                            num_train=2, num_val=2, size=64, seed=3)


def tiny_canvas_mask_rcnn(canvas):
    """The canvas Mask R-CNN config, 32 wide, on the canvas images."""
    cfg = Config.fromfile('configs/benchmarks/mask_rcnn/'
                          'canvas_mae-vit-demo_simple-fpn_mask-rcnn.py')
    model = cfg.model
    model.backbone.update(arch=dict(embed_dims=32, num_layers=2,
                                    num_heads=2, feedforward_channels=64),
                          out_indices=(1, ), init_cfg=None)
    model.neck.update(in_channels=32, out_channels=32)
    model.rpn_head.update(in_channels=32, feat_channels=32)
    roi = model.roi_head
    roi.bbox_roi_extractor.out_channels = 32
    roi.mask_roi_extractor.out_channels = 32
    roi.bbox_head.update(in_channels=32, conv_out_channels=32,
                         fc_out_channels=32)
    roi.mask_head.update(in_channels=32, conv_out_channels=32)
    # few RoIs (CPU time); every box accepted at test time (no empty result)
    model.train_cfg.rpn_proposal.max_per_img = 64
    model.train_cfg.rcnn.sampler.num = 16
    model.test_cfg.rpn.max_per_img = 32
    model.test_cfg.rcnn.score_thr = 0.0
    for split in ('train', 'val'):
        ds = cfg[f'{split}_dataloader'].dataset
        ds.data_root = canvas['coco_root'] + '/'
    return cfg


def one_step_and_predictions(cfg, device='cpu'):
    """Losses of one train step and the predictions of one val step."""
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper

    from mmdet.registry import DATASETS, MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model).to(device)
        model.init_weights()
        train = DATASETS.build(cfg.train_dataloader.dataset)
        val = DATASETS.build(cfg.val_dataloader.dataset)
        ow = build_optim_wrapper(
            model, dict(type='OptimWrapper',
                        optimizer=dict(type='AdamW', lr=1e-3)))
        model.train()
        np.random.seed(1)  # the pipeline's RandomFlip
        batch = pseudo_collate([train[0], train[1]])
        torch.manual_seed(1)  # the RoI samplers
        losses = model.train_step(batch, ow)
        model.eval()
        with torch.no_grad():
            preds = model.val_step(pseudo_collate([val[0], val[1]]))
    return losses, preds


@requires_fashion_mnist
def test_mask_rcnn_step_same_on_both_routes(canvas, monkeypatch):
    cfg = tiny_canvas_mask_rcnn(canvas)
    roi = cfg.model.roi_head
    assert cfg.model.rpn_head.type == 'PortableRPNHead'
    assert roi.bbox_roi_extractor.type == 'PortableSingleRoIExtractor'
    assert roi.mask_roi_extractor.type == 'PortableSingleRoIExtractor'
    assert roi.bbox_head.type == 'PortableShared4Conv1FCBBoxHead'
    assert roi.mask_head.type == 'PortableFCNMaskHead'
    losses_ref, preds_ref = one_step_and_predictions(copy.deepcopy(cfg))

    # torchvision's kernels only: any call into mmcv's extension fails
    import mmcv._ext as ext
    monkeypatch.setattr(ops, '_mmcv_kernel_device_types', frozenset)
    for name in dir(ext):
        if not name.startswith('_') and callable(getattr(ext, name)):
            monkeypatch.setattr(
                ext, name,
                lambda *a, _n=name, **k: pytest.fail(f'mmcv kernel {_n}'))
    losses, preds = one_step_and_predictions(copy.deepcopy(cfg))

    assert set(losses) >= {'loss_rpn_cls', 'loss_cls', 'loss_bbox',
                           'loss_mask'}
    for key in losses_ref:
        torch.testing.assert_close(losses[key], losses_ref[key], rtol=1e-5,
                                   atol=1e-6, msg=key)
    for p, p_ref in zip(preds, preds_ref):
        inst, ref = p.pred_instances, p_ref.pred_instances
        assert len(ref) > 0
        torch.testing.assert_close(inst.bboxes, ref.bboxes)
        torch.testing.assert_close(inst.scores, ref.scores)
        assert torch.equal(inst.labels, ref.labels)
        assert torch.equal(inst.masks, ref.masks)
