"""HPM configs: reference parameter counts (meta device) and a tiny Runner run."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmpretrain.registry import MODELS

from .conftest import official_shapes, requires_fashion_mnist

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def reference_shapes():
    return official_shapes('hpm_vit_base_patch16_dec512d8b')


def build_meta(path):
    cfg = Config.fromfile(osp.join(ROOT, path))
    with torch.device('meta'):
        return cfg, MODELS.build(cfg.model)


def count(model, teacher):
    return sum(p.numel() for k, p in model.named_parameters()
               if k.startswith('target_generator.') == teacher)


def test_base_param_count_matches_reference():
    ref = sum(math.prod(s) for s in reference_shapes().values())
    assert ref == 137_521_920
    for path in ('configs/hpm/hpm-vit-base_pixel_800e.py',
                 'configs/hpm/hpm-vit-base_pixel_200e.py'):
        _, model = build_meta(path)
        assert count(model, teacher=False) == ref
        # the teacher is a full copy of the student (the reference's
        # ema_state_dict has the same layout)
        assert count(model, teacher=True) == ref


def test_large_and_recipes():
    cfg, model = build_meta('configs/hpm/hpm-vit-large_pixel_800e.py')
    assert model.backbone.embed_dims == 1024
    assert len(model.backbone.layers) == 24
    assert len(model.loss_predictor.blocks) == 8
    assert cfg.train_dataloader.batch_size * 8 == 256
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(1.5e-4)
    cfg200 = Config.fromfile(
        osp.join(ROOT, 'configs/hpm/hpm-vit-base_pixel_200e.py'))
    assert cfg200.train_dataloader.batch_size * 8 == 2048
    assert cfg200.optim_wrapper.optimizer.lr == pytest.approx(1.5e-4 * 8)
    assert cfg200.train_cfg.max_epochs == 200
    assert cfg.model.head.norm_pix is False  # the reference's quirk
    assert dict(type='HPMTeacherHook') in cfg.custom_hooks


def tiny_runner_cfg(work_dir):
    cfg = Config.fromfile(osp.join(ROOT, 'configs/demo/hpm_fashion-mnist.py'))
    cfg.model.backbone.arch = dict(embed_dims=32, num_layers=1, num_heads=2,
                                   feedforward_channels=64)
    cfg.model.backbone.img_size = 16
    cfg.model.neck.update(num_patches=16, embed_dim=32, decoder_embed_dim=16,
                          decoder_depth=1, decoder_num_heads=2)
    cfg.model.loss_predictor.update(embed_dims=16, depth=1, num_heads=2)
    cfg.model.target_generator.update(base_momentum=0.99, final_momentum=0.999,
                                      momentum_warmup=4)
    cfg.train_dataloader.update(batch_size=4, num_workers=0,
                                persistent_workers=False)
    cfg.train_dataloader.dataset.update(split='test', img_size=16,
                                        num_samples=32)
    cfg.train_dataloader.dataset.pipeline[0].scale = 16
    cfg.train_cfg.max_iters = 3
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1., by_epoch=False)]
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 3
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    cfg.work_dir = str(work_dir)
    return cfg


@requires_fashion_mnist
def test_tiny_runner_logs_both_losses_and_saves_teacher(tmp_path):
    runner = Runner.from_cfg(tiny_runner_cfg(tmp_path))
    runner.train()
    scalars = runner.message_hub.log_scalars
    for key in ('train/loss_rec', 'train/loss_pred', 'train/loss',
                'train/teacher_momentum'):
        assert key in scalars, key
    assert len(scalars['train/loss_rec'].data[0]) == 3
    total = scalars['train/loss'].current()
    parts = (scalars['train/loss_rec'].current() +
             scalars['train/loss_pred'].current())
    assert total == pytest.approx(parts, rel=1e-5)
    # iteration 3 (index 2): tau = 0.99 + (2 / 4)(0.999 - 0.99)
    assert scalars['train/teacher_momentum'].current() == pytest.approx(
        0.9945)
    # the teacher is in the checkpoint with the values the model holds
    ckpt = torch.load(osp.join(str(tmp_path), 'iter_3.pth'),
                      map_location='cpu', weights_only=True)
    model = runner.model
    teacher = {k: v for k, v in ckpt['state_dict'].items()
               if k.startswith('target_generator.teacher.')}
    assert len(teacher) == sum(
        1 for k in model.state_dict() if k.startswith('target_generator.'))
    for k, v in teacher.items():
        assert torch.equal(v, model.state_dict()[k])
    # and it is an average, not a copy, of the trained student
    w_s = model.backbone.layers[0].attn.qkv.weight
    w_t = model.target_generator.teacher['backbone'].layers[0].attn.qkv.weight
    assert not torch.equal(w_s, w_t)
