"""Frozen-feature protocols: SIM's few-shot logistic regression, HPM's kNN,
the 1 % subset list dataset, the linear-probe necks, and the
frozen_feature_eval tool end to end on a tiny image folder."""
import json
import math
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine import Config

from mmmim.evaluation import (center_and_normalize_rows,
                              fit_logistic_regression, knn_accuracy,
                              knn_topk_accuracies,
                              logistic_regression_accuracy)
from mmmim.evaluation.logistic import logistic_objective
from .test_transfer_loading import TINY, make_tiny_mae_checkpoint

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
FROZEN = osp.join(ROOT, 'configs/benchmarks/frozen_eval')


def test_center_and_normalize_rows():
    x = torch.tensor([[1., 2., 3.], [4., 4., 10.]], dtype=torch.float64)
    out = center_and_normalize_rows(x)
    expected = torch.tensor([[-1., 0., 1.], [-2., -2., 4.]],
                            dtype=torch.float64)
    expected = expected / expected.norm(dim=1, keepdim=True)
    torch.testing.assert_close(out, expected)


def test_logistic_regression_known_optimum():
    # two points x = +1 (class 0) and x = -1 (class 1): by symmetry
    # W = [[a, -a]] with lambda a = 1 / (1 + exp(2 a)) (zero gradient of
    # log(1 + exp(-2a)) + lambda a^2); solved here by bisection
    lambd = 0.1
    lo, hi = 0., 10.
    for _ in range(200):
        mid = (lo + hi) / 2
        if lambd * mid - 1 / (1 + math.exp(2 * mid)) > 0:
            hi = mid
        else:
            lo = mid
    feats = torch.tensor([[1.], [-1.]])
    weight = fit_logistic_regression(feats, torch.tensor([0, 1]), lambd)
    torch.testing.assert_close(
        weight, torch.tensor([[lo, -lo]], dtype=torch.float64),
        rtol=0, atol=1e-6)


def test_logistic_regression_is_the_minimiser():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(60, 5, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 3, (60, ), generator=g)
    weight = fit_logistic_regression(feats, labels, 0.05).requires_grad_()
    loss = logistic_objective(weight, feats, labels, 0.05)
    (grad, ) = torch.autograd.grad(loss, weight)
    assert grad.abs().max() < 1e-6
    # any perturbation increases the (strictly convex) objective
    with torch.no_grad():
        bumped = logistic_objective(
            weight + 1e-3 * torch.randn(weight.shape, generator=g,
                                        dtype=torch.float64),
            feats, labels, 0.05)
    assert bumped > loss


def test_logistic_accuracy_scales_lambda_by_samples():
    g = torch.Generator().manual_seed(1)
    centers = torch.eye(4, 8) * 5
    labels = torch.arange(4).repeat_interleave(10)
    feats = centers[labels] + torch.randn(40, 8, generator=g)
    res = logistic_regression_accuracy(feats[::2], labels[::2], feats[1::2],
                                       labels[1::2], lambd=0.1)
    assert res['lambda'] == pytest.approx(0.1 / 20)
    assert res['train_top1'] == 100.0 and res['test_top1'] == 100.0


def test_knn_topk_matches_single_k_and_counts_top5():
    g = torch.Generator().manual_seed(0)
    bank = torch.randn(50, 6, generator=g)
    bank_labels = torch.randint(0, 7, (50, ), generator=g)
    queries = torch.randn(20, 6, generator=g)
    labels = torch.randint(0, 7, (20, ), generator=g)
    res = knn_topk_accuracies(bank, bank_labels, queries, labels,
                              ks=(1, 5, 20), num_classes=7)
    for k in (1, 5, 20):
        assert res[f'k{k}_top1'] == pytest.approx(
            knn_accuracy(bank, bank_labels, queries, labels, k=k,
                         num_classes=7))
        assert res[f'k{k}_top5'] >= res[f'k{k}_top1']
    # with one neighbour only its class has votes: top-5 = top-1 unless a
    # zero-vote class is ranked; a hand case: 3 bank points, 2 classes
    bank = torch.tensor([[1., 0.], [0.9, 0.1], [0., 1.]])
    res = knn_topk_accuracies(bank, torch.tensor([0, 1, 1]),
                              torch.tensor([[1., 0.05]]), torch.tensor([1]),
                              ks=(1, 2, 3), topk=(1, 2), num_classes=2)
    # k=1: nearest is class 0 (wrong); k=2: weights exp(cos/T) favour the
    # nearest (class 0) over the second (class 1); k=3 adds class 1 again
    w = [math.exp(F.cosine_similarity(torch.tensor([[1., 0.05]]), b[None])
                  .item() / 0.07) for b in bank]
    assert res['k1_top1'] == 0 and res['k1_top2'] == 100
    assert res['k2_top1'] == (100 if w[1] > w[0] else 0)
    assert res['k3_top1'] == (100 if w[1] + w[2] > w[0] else 0)


def _image_folder(root, classes=('n001', 'n002'), per_class=3, size=40):
    import cv2
    rng = np.random.default_rng(0)
    names = []
    for split in ('train', 'val'):
        for c in classes:
            d = osp.join(root, split, c)
            __import__('os').makedirs(d)
            for i in range(per_class):
                name = f'{c}_{i}.png'
                img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
                img[..., 0] = 200 if c == classes[0] else 20  # separable
                cv2.imwrite(osp.join(d, name), img)
                if split == 'train':
                    names.append(name)
    return names


def test_image_list_subset(tmp_path):
    from mmpretrain.registry import DATASETS
    names = _image_folder(str(tmp_path))
    subset = tmp_path / 'subset.txt'
    subset.write_text('\n'.join([names[0], names[4], '']) + '\n')
    ds = DATASETS.build(dict(type='ImageListSubset', data_root=str(tmp_path),
                             subset_file=str(subset)))
    assert len(ds) == 2
    assert [ds.get_data_info(i)['gt_label'] for i in range(2)] == [0, 1]
    assert ds.get_data_info(1)['img_path'].endswith('train/n002/n002_1.png')
    assert ds.metainfo['classes'] == ('n001', 'n002')
    subset.write_text('n999_1.JPEG\n')
    with pytest.raises(ValueError, match='n999'):
        DATASETS.build(dict(type='ImageListSubset',
                            data_root=str(tmp_path),
                            subset_file=str(subset)))


def _tiny_config(tmp_path, base, subset):
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='ResizeEdge', scale=36, edge='short'),
        dict(type='CenterCrop', crop_size=32),
        dict(type='PackInputs'),
    ]
    val = dict(_delete_=True, type='CustomDataset', data_root=str(tmp_path),
               data_prefix='val', pipeline=pipeline)
    train = dict(val, data_prefix='train') if subset is None else dict(
        _delete_=True, type='ImageListSubset', data_root=str(tmp_path),
        subset_file=str(subset), pipeline=pipeline)
    text = (f'_base_ = {osp.join(FROZEN, base)!r}\n'
            f'model = dict(backbone=dict(arch=dict(_delete_=True, **{TINY}),'
            ' img_size=32, patch_size=4))\n'
            f'train_dataloader = dict(batch_size=4, num_workers=0, '
            f'dataset={train!r})\n'
            f'test_dataloader = dict(batch_size=4, num_workers=0, '
            f'dataset={val!r})\n')
    path = tmp_path / base
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize('base', ['hpm_vit-base-p16_knn_in1k.py',
                                  'sim_vit-base-p16_logistic-1pct_in1k.py'])
def test_frozen_feature_eval_tool(tmp_path, base):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'frozen_feature_eval',
        osp.join(ROOT, 'tools/analysis/frozen_feature_eval.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)

    names = _image_folder(str(tmp_path))
    subset = None
    if 'logistic' in base:
        subset = tmp_path / '1percent.txt'
        subset.write_text('\n'.join(names[:2] + names[3:5]) + '\n')
    cfg_path = _tiny_config(tmp_path, base, subset)
    ckpt = str(tmp_path / 'mae_tiny.pth')
    make_tiny_mae_checkpoint(ckpt)
    out = tool.main([cfg_path, '--checkpoint', ckpt, '--out-json',
                     str(tmp_path / 'res.json'), '--save-features',
                     str(tmp_path / 'feats')])
    cfg = Config.fromfile(cfg_path)
    assert json.load(open(tmp_path / 'res.json'))['results'] == \
        out['results']
    # every key of the tiny checkpoint's encoder accounted for
    report = out['load_report']
    assert report['missing'] == []
    if cfg.model.backbone.final_norm:
        assert report['unexpected'] == []
    else:  # SIM's features: no final norm
        assert sorted(report['unexpected']) == ['ln1.bias', 'ln1.weight']
    if 'knn' in base:
        assert out['num_train'] == 6 and out['num_test'] == 6
        assert set(out['results']) == {
            f'k{k}_top{t}' for k in (10, 20, 100, 200) for t in (1, 5)}
    else:
        assert out['num_train'] == 4 and out['num_test'] == 6
        assert out['results']['lambda'] == pytest.approx(0.1 / 4)
        assert out['results']['train_top1'] == 100.0
    # saved features evaluate to the same numbers without a model
    again = tool.main([cfg_path, '--load-features', str(tmp_path / 'feats')])
    assert again['results'] == out['results']


def test_sim_linear_probe_neck_freezes_exactly_the_fresh_norm():
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(
        'configs/benchmarks/classification/sim_vit-base-p16_linear-90e_in1k.py')
    cfg.model.backbone.update(arch=TINY, img_size=32, patch_size=4,
                              frozen_stages=2, init_cfg=None)
    cfg.model.neck[0].in_channels = 32
    cfg.model.neck[1].input_features = 32
    cfg.model.head.update(in_channels=32, num_classes=5)
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    model.init_weights()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ['head.fc.weight', 'head.fc.bias']
    ln = model.neck[0].fc_norm
    assert torch.equal(ln.weight, torch.ones(32))
    assert torch.equal(ln.bias, torch.zeros(32))
    model.train()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        tokens = model.backbone(x)[-1].flatten(2).mean(-1)  # GAP, no norm
        feats = model.neck(model.backbone(x))[0]
    normed = F.layer_norm(tokens, (32, ), eps=1e-6)
    expected = (normed - normed.mean(0)) / torch.sqrt(
        normed.var(0, unbiased=False) + 1e-6)
    torch.testing.assert_close(feats, expected, rtol=1e-4, atol=1e-4)
