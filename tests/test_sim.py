"""SIM algorithm: momentum branch, schedule, parameter counts, Runner run."""
import math
import os
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from torch.utils.data import Dataset

from mmpretrain.registry import DATASETS, MODELS, TRANSFORMS
from mmpretrain.structures import DataSample
from mmmim.models.selfsup.sim import cosine_momentum

from .conftest import official_shapes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# counted from tests/data/official_keys/sim_vit_base_patch16.txt (see test
# below)
REF_TOTAL, REF_TRAINABLE = 231250944, 129944832

TINY = dict(
    type='SIMPretrainer',
    base_momentum=0.99,
    backbone=dict(
        type='MaskedViT',
        arch=dict(embed_dims=32, num_layers=1, num_heads=2,
                  feedforward_channels=64),
        img_size=32, patch_size=8, mask_mode='drop', sincos_layout='yx',
        frozen_patch_embed=True, final_norm=False),
    head=dict(type='SiameseDenseHead', in_channels=32, embed_dims=32,
              grid_size=4, num_heads=2, projector_depth=1, predictor_depth=1))


def _model():
    model = MODELS.build(TINY)
    model.init_weights()
    return model


def _samples(batch, num_masked=10):
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(batch):
        s = DataSample()
        mask = np.zeros(16, int)
        mask[rng.permutation(16)[:num_masked]] = 1
        s.set_mask(mask.reshape(4, 4))
        s.set_field(np.array([[1, 2, 20, 25], [3, 4, 18, 22]], np.float32),
                    'crop_boxes')
        s.set_field(rng.random(2) < .5, 'flips')
        s.set_field(40, 'img_width')
        samples.append(s)
    return samples


def _inputs(batch=3):
    return [torch.randn(batch, 3, 32, 32), torch.randn(batch, 3, 32, 32)]


def test_cosine_schedule_values():
    assert cosine_momentum(0.995, 0.) == pytest.approx(0.995)
    assert cosine_momentum(0.995, .5) == pytest.approx(0.9975)
    assert cosine_momentum(0.995, 1.) == pytest.approx(1.)
    t = 0.3
    assert cosine_momentum(0.9, t) == pytest.approx(
        1 - 0.5 * (1 + math.cos(math.pi * t)) * 0.1)


def test_momentum_branch_starts_as_copy_and_gets_no_gradient():
    model = _model()
    mb = model.momentum_branch
    for online, target in model._momentum_pairs():
        assert torch.equal(online, target)
        assert not target.requires_grad
    n_pairs = len(list(model._momentum_pairs()))
    assert n_pairs == sum(1 for _ in mb.parameters())
    # the frozen patch embedding is not trained either
    assert not any(p.requires_grad
                   for p in model.backbone.patch_embed.parameters())
    losses = model.loss(_inputs(), _samples(3))
    losses['loss'].backward()
    assert all(p.grad is None for p in mb.parameters())
    assert model.backbone.layers[0].attn.qkv.weight.grad is not None
    assert model.head.predictor.rel_pos_proj.weight.grad is not None


def test_ema_is_over_parameters_only():
    model = _model()
    mb = model.momentum_branch
    online_bn = model.head.projector.blocks[0].norm1.bn
    target_bn = mb.projector.blocks[0].norm1.bn
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p))
        online_bn.running_mean.fill_(3.)
        online_bn.running_var.fill_(7.)
    pairs = list(model._momentum_pairs())
    before = [target.clone() for _, target in pairs]
    model.momentum_update(0.9)
    for (online, target), old in zip(pairs, before):
        torch.testing.assert_close(target, 0.9 * old + 0.1 * online)
    assert len(pairs) == len(list(mb.parameters()))
    # BatchNorm running statistics are neither averaged nor copied
    assert torch.equal(target_bn.running_mean, torch.zeros(32))
    assert torch.equal(target_bn.running_var, torch.ones(32))


def test_update_happens_before_the_target_pass():
    model = _model()
    model.momentum = 0.5
    with torch.no_grad():
        model.backbone.cls_token.add_(1.)
    expected = 0.5 * model.momentum_branch.cls_token + 0.5 * \
        model.backbone.cls_token
    seen = {}
    original = model.target_view2

    def spy(x2):
        seen['cls'] = model.momentum_branch.cls_token.clone()
        return original(x2)

    model.target_view2 = spy
    model.loss(_inputs(), _samples(3))
    torch.testing.assert_close(seen['cls'], expected.detach())


def test_loss_matches_head_on_explicit_branches():
    model = _model()
    model.momentum = 1.0  # no EMA change, so the target is reproducible
    x1, x2 = _inputs(4)
    samples = _samples(4)
    torch.manual_seed(1)
    loss = model.loss([x1, x2], samples)['loss']
    # recompute by hand from the components
    mask = torch.stack([torch.as_tensor(s.mask) for s in samples]).flatten(1)
    geo = model.get_geometry(samples, x1.device)
    pred = model.predict_view2(x1, mask.bool(), geo)
    target = model.target_view2(x2)
    t = torch.nn.functional.layer_norm(target, (32, ), eps=1e-5)
    p, t = pred.reshape(-1, 32).double(), t.reshape(-1, 32).double()
    corr = t.T @ t / t.shape[0]
    expected = (((p - t)**2).sum(-1).mean() +
                0.02 * ((p @ corr) * p).sum(-1).mean()) / 32
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=0)


def test_missing_geometry_is_reported():
    model = _model()
    samples = _samples(2)
    for s in samples:
        del s.crop_boxes
    with pytest.raises(KeyError, match='crop_boxes'):
        model.loss(_inputs(2), samples)


def _reference_counts():
    total = trainable = 0
    for key, shape in official_shapes('sim_vit_base_patch16').items():
        if re.search('running_mean|running_var|num_batches_tracked', key):
            continue
        n = math.prod(shape)
        total += n
        frozen = (key.startswith(('mm_', 'patch_embed.'))
                  or key in ('pos_embed', 'decoder_pos_embed'))
        trainable += 0 if frozen else n
    return total, trainable


def test_base_config_matches_reference_parameter_counts():
    assert _reference_counts() == (REF_TOTAL, REF_TRAINABLE)
    cfg = Config.fromfile(
        os.path.join(REPO, 'configs/sim/sim-vit-base_1600e.py'))
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert (total, trainable) == (REF_TOTAL, REF_TRAINABLE)
    assert len(model.momentum_branch.layers) == 12
    assert len(model.head.projector.blocks) == 2
    assert len(model.head.predictor.blocks) == 4
    assert cfg.train_pipeline[2]['num_masking_patches'] == 118


@DATASETS.register_module(name='_SIMToyImages', force=True)
class _ToyImages(Dataset):
    """Eight random 40 x 48 images through a pipeline."""

    def __init__(self, pipeline):
        rng = np.random.default_rng(0)
        self.imgs = rng.integers(0, 256, (8, 40, 48, 3), dtype=np.uint8)
        self.pipeline = [TRANSFORMS.build(t) for t in pipeline]

    def __len__(self):
        return len(self.imgs)

    def __getitem__(self, idx):
        results = dict(img=self.imgs[idx].copy())
        for t in self.pipeline:
            results = t(results)
        return results


def _runner(work_dir, max_iters, resume=False):
    pipeline = [
        dict(type='SIMTwoViews', size=32, backend='cv2'),
        dict(type='BlockwiseMaskGenerator', input_size=32, patch_size=8,
             num_masking_patches=10, min_num_patches=2, exact_count=True),
        dict(type='PackInputs',
             algorithm_keys=['mask', 'crop_boxes', 'flips', 'img_width']),
    ]
    return Runner(
        model=TINY,
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=dict(type='_SIMToyImages', pipeline=pipeline),
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate'),
            batch_size=4,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3),
                           clip_grad=dict(max_norm=1.0)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        custom_hooks=[dict(type='SIMMomentumHook')],
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False)),
        default_scope='mmpretrain',
        resume=resume,
        log_level='WARNING')


def test_two_iteration_runner_run_and_resume(tmp_path):
    runner = _runner(str(tmp_path), max_iters=2)
    runner.train()
    model = runner.model
    assert runner.iter == 2
    # the hook set m(t) for the last iteration (iter 1 of 2)
    assert model.momentum == pytest.approx(cosine_momentum(0.99, 1 / 2))
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert math.isfinite(loss)
    diffs = [not torch.equal(o, t) for o, t in model._momentum_pairs()
             if o.requires_grad]
    assert any(diffs)  # the EMA followed the trained online branch
    assert os.path.isfile(os.path.join(str(tmp_path), 'iter_2.pth'))

    # resuming continues the schedule from the runner's restored iteration
    runner = _runner(str(tmp_path), max_iters=3, resume=True)
    runner.train()
    assert runner.iter == 3
    assert runner.model.momentum == pytest.approx(
        cosine_momentum(0.99, 2 / 3))


def test_base_config_synchronises_token_batchnorm():
    from mmmim.models.utils import PortableSyncBN
    cfg = Config.fromfile('configs/sim/sim-vit-base_1600e.py')
    assert cfg.get('sync_bn') is None  # no mmengine conversion needed
    head_cfg = dict(cfg.model.head, in_channels=32, embed_dims=32,
                    grid_size=4, num_heads=2, projector_depth=1,
                    predictor_depth=1)
    head = MODELS.build(head_cfg)
    bns = [m.bn for m in head.modules()
           if type(m).__name__ == 'TokenBatchNorm']
    # two norms per block: projector and predictor
    assert len(bns) == 2 * 2
    assert all(type(bn) is PortableSyncBN for bn in bns)
    # torch's SyncBN (GPU only) can still be asked for directly
    head = MODELS.build(dict(TINY['head'], norm_cfg=dict(type='SyncBN')))
    assert isinstance(head.projector.blocks[0].norm1.bn,
                      torch.nn.SyncBatchNorm)


def test_global_unigrad_through_the_head():
    cfg = dict(TINY, head=dict(TINY['head'],
                               loss=dict(type='UniGradLoss', mode='global')))
    model = MODELS.build(cfg)
    model.init_weights()
    model.momentum = 1.0
    x1, x2 = _inputs(4)
    samples = _samples(4)
    loss = model.loss([x1, x2], samples)['loss']
    mask = torch.stack([torch.as_tensor(s.mask) for s in samples]).flatten(1)
    pred = model.predict_view2(x1, mask.bool(),
                               model.get_geometry(samples, x1.device))
    t = torch.nn.functional.layer_norm(model.target_view2(x2), (32, ),
                                       eps=1e-5)
    p, t = pred.mean(1).double(), t.mean(1).double()
    corr = t.T @ t / 4
    expected = (((p - t)**2).sum(-1).mean() +
                0.02 * ((p @ corr) * p).sum(-1).mean()) / 32
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=0)


@pytest.mark.parametrize('once_per_window', [True, False])
def test_momentum_update_once_per_accumulation_window(once_per_window):
    """With accumulative_counts=3 the reference updates the momentum branch
    on micro-steps 0 and 3 of 6 (``data_iter_step % accum_iter == 0``);
    ``momentum_once_per_window=False`` updates it on all six."""
    from mmengine.optim import OptimWrapper
    model = MODELS.build(dict(TINY, momentum_once_per_window=once_per_window))
    model.init_weights()
    model.momentum = 0.5
    with torch.no_grad():  # the online cls token moves away from the copy
        model.backbone.cls_token.add_(1.)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.),
                           accumulative_counts=3)
    wrapper.initialize_count_status(model, 0, 6)
    online = model.backbone.cls_token.detach().clone()
    updated = []
    for _ in range(6):
        before = model.momentum_branch.cls_token.detach().clone()
        model.train_step(dict(inputs=_inputs(3), data_samples=_samples(3)),
                         wrapper)
        after = model.momentum_branch.cls_token.detach()
        changed = not torch.equal(before, after)
        if changed:  # one EMA step with m = 0.5, nothing else
            torch.testing.assert_close(after, 0.5 * before + 0.5 * online)
        updated.append(changed)
    expected = [True, False, False, True, False, False] if once_per_window \
        else [True] * 6
    assert updated == expected
