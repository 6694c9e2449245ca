"""The reference recipes added for ViT-L / ViT-H (MAE, HPM) and the frozen
evaluations: each config resolves to the reference's values and builds its
model on the meta device with the reference architecture's parameter count.
"""
import pytest
import torch
from mmengine import Config
from mmengine.registry import init_default_scope

CLS = 'configs/benchmarks/classification'


def _vit_params(width, depth, patch, grid, *, cls=True, final_norm=True,
                fc_norm=False, head=0):
    """Parameters of a timm / MAE ViT: patch embed, cls token, pos table,
    blocks (qkv, proj, fc1, fc2, two LNs), norms and a linear head."""
    block = 12 * width * width + 13 * width
    n = patch * patch * 3 * width + width
    n += width if cls else 0
    n += (grid * grid + 1) * width
    n += depth * block
    n += 2 * width * (int(final_norm) + int(fc_norm))
    n += head * width + head if head else 0
    return n


def _build(cfg):
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    from mmpretrain.registry import MODELS
    with torch.device('meta'):
        return MODELS.build(cfg.model)


def _count(module, trainable=False):
    return sum(p.numel() for p in module.parameters()
               if p.requires_grad or not trainable)


@pytest.mark.parametrize('cfg_file,width,depth,patch,epochs,lr,decay,dp', [
    # mae FINETUNE.md:81-93 (ViT-L), :98-110 (ViT-H): blr 1e-3 x 1024 / 256
    ('mae_vit-large-p16_ft-50e_in1k.py', 1024, 24, 16, 50, 4e-3, 0.75, 0.2),
    ('mae_vit-huge-p14_ft-50e_in1k.py', 1280, 32, 14, 50, 4e-3, 0.75, 0.3),
    # HPM scripts/finetune_large.sh: blr 5e-4 x 512 / 256, decay 0.8
    ('hpm_vit-large-p16_ft-50e_in1k.py', 1024, 24, 16, 50, 1e-3, 0.8, 0.1),
])
def test_finetune_recipes(cfg_file, width, depth, patch, epochs, lr, decay,
                          dp):
    cfg = Config.fromfile(f'{CLS}/{cfg_file}')
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(lr)
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == decay
    assert cfg.model.backbone.drop_path_rate == dp
    warmup, cosine = cfg.param_scheduler
    assert (warmup.end, cosine.begin, cosine.eta_min) == (5, 5, 1e-6)
    # the cosine runs to train_cfg.max_epochs (set by the Runner)
    assert cosine.get('end') is None and cosine.get('T_max') is None
    total_batch = cfg.train_dataloader.batch_size * 8
    assert total_batch == cfg.auto_scale_lr.base_batch_size
    model = _build(cfg)
    # timm's global-pool ViT (fc_norm, no final norm) + 1000-way head
    assert _count(model) == _vit_params(width, depth, patch, 224 // patch,
                                        final_norm=False, fc_norm=True,
                                        head=1000)


@pytest.mark.parametrize('cfg_file,width,depth,patch,epochs', [
    ('mae_vit-large-p16_linear-50e_in1k.py', 1024, 24, 16, 50),
    ('mae_vit-huge-p14_linear-50e_in1k.py', 1280, 32, 14, 50),
    ('hpm_vit-base-p16_linear-sgd-100e_in1k.py', 768, 12, 16, 100),
])
def test_linear_probe_recipes(cfg_file, width, depth, patch, epochs):
    cfg = Config.fromfile(f'{CLS}/{cfg_file}')
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.param_scheduler[1].get('end') is None  # ends with training
    assert cfg.param_scheduler[0].end == 10  # warm-up epochs
    opt = cfg.optim_wrapper.optimizer
    if 'hpm' in cfg_file:  # HPM scripts/linprob.sh + main_linprob.py
        assert (opt.type, opt.momentum, opt.weight_decay) == ('SGD', 0.9, 0)
        assert opt.lr == pytest.approx(1e-3 * 2048 / 256)
        assert cfg.train_dataloader.batch_size * 4 == 2048
        crop = cfg.train_dataloader.dataset.pipeline[1]
        assert crop.interpolation == 'bicubic'
    else:  # MAE's LARS probe
        assert opt.type == 'LARS' and opt.lr == pytest.approx(6.4)
    model = _build(cfg)
    # everything but the probe (BN without affine + Linear) is frozen
    assert _count(model, trainable=True) == width * 1000 + 1000
    assert _count(model.backbone) == _vit_params(width, depth, patch,
                                                 224 // patch)


@pytest.mark.parametrize('cfg_file,width,depth,patch,encoder', [
    # mae models_mae.py:231-244; timm ViT-L/16 and ViT-H/14 encoders
    ('configs/mae/mae-vit-large_pixel_800e.py', 1024, 24, 16, 303301632),
    ('configs/mae/mae-vit-huge-p14_pixel_800e.py', 1280, 32, 14, 630764800),
])
def test_mae_large_huge_pretraining(cfg_file, width, depth, patch, encoder):
    cfg = Config.fromfile(cfg_file)
    assert cfg.train_cfg.max_epochs == 800
    assert cfg.param_scheduler[1].get('end') is None  # ends with training
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(1.5e-4 * 16)
    mask = [t for t in cfg.train_dataloader.dataset.pipeline
            if t.type == 'RandomMaskGenerator'][0]
    assert (mask.patch_size, mask.mask_ratio) == (patch, 0.75)
    model = _build(cfg)
    assert _count(model.backbone) == encoder == _vit_params(
        width, depth, patch, 224 // patch)
    grid = 224 // patch
    # decoder: embed, mask token, pos table, 8 x 512 blocks, norm, pred
    decoder = (width * 512 + 512) + 512 + (grid * grid + 1) * 512 + \
        8 * (12 * 512 * 512 + 13 * 512) + 1024 + (512 * patch * patch * 3 +
                                                  patch * patch * 3)
    assert _count(model) == encoder + decoder
    assert model.head.patch_size == patch


@pytest.mark.parametrize('cfg_file', [
    'configs/benchmarks/frozen_eval/hpm_vit-base-p16_knn_in1k.py',
    'configs/benchmarks/frozen_eval/sim_vit-base-p16_logistic-1pct_in1k.py',
])
def test_frozen_eval_configs(cfg_file):
    cfg = Config.fromfile(cfg_file)
    model = _build(cfg)
    assert _count(model) == _vit_params(768, 12, 16, 14,
                                        final_norm='knn' in cfg_file)
    assert cfg.model.backbone.out_type == 'cls_token'
    if 'knn' in cfg_file:
        assert cfg.frozen_eval == dict(type='knn', ks=(10, 20, 100, 200),
                                       temperature=0.07, topk=(1, 5))
    else:
        assert cfg.frozen_eval == dict(type='logistic', lambd=0.1)
        assert cfg.train_dataloader.dataset.type == 'ImageListSubset'
        resize = cfg.test_dataloader.dataset.pipeline[1]
        assert resize.interpolation == 'bilinear'
