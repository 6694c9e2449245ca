"""The GPU test suite: what training on a CUDA device relies on.

Each test takes the device as a parameter. The ``cuda`` variant carries the
``cuda`` marker and skips without a GPU (``tools/gpu_check.sh`` runs
``pytest -m cuda``); the ``cpu`` variant, where it adds something, runs the
same code everywhere. The bf16 train step of every method is
``tests/test_bf16.py`` (also parametrised by device); exact resume on the CPU
is ``tests/test_exact_resume.py``.
"""
import copy
import traceback

import pytest
import torch
from mmengine.dataset import default_collate, pseudo_collate
from mmengine.logging import MessageHub
from mmengine.registry import DefaultScope, init_default_scope
from torch.utils._python_dispatch import TorchDispatchMode

from mmpretrain.registry import DATASETS, HOOKS, MODELS
from mmpretrain.structures import DataSample
from .conftest import DEVICES, cuda_only, requires_fashion_mnist
from .test_exact_resume import TINY, tiny_config

aten = torch.ops.aten


# ------------------------------------------- masks and teachers on the device
def tiny_model(method, tmp_path, device):
    """The tiny model of ``method`` that the resume and bf16 tests train."""
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(tiny_config(method, tmp_path).model)
    model.init_weights()
    return model.to(device)


@pytest.mark.parametrize('device', DEVICES)
def test_hpm_teacher_and_mask_on_device(device, tmp_path):
    model = tiny_model('hpm', tmp_path, device)  # 32 px, patch 4: L = 64
    img = torch.randn(3, 3, 32, 32, device=device)
    scores, feats = model.target_generator(img)
    assert scores.device.type == feats.device.type == torch.device(
        device).type
    model.target_generator.guide = False  # K = int(M * hard_ratio)
    mask, num_masked = model.get_mask_and_count(img, None, scores)
    assert mask.device.type == torch.device(device).type
    M = 64 - int(64 * (1 - model.target_generator.mask_ratio))
    K = int(M * model.target_generator.hard_ratio)
    assert num_masked == M and K > 0
    assert mask.sum(1).tolist() == [M] * 3
    # the K patches the teacher scores hardest are always masked
    assert mask.gather(1, scores.topk(K, dim=1).indices).all()
    # the EMA update runs on the device
    teacher = model.target_generator.teacher['backbone']
    before = teacher.cls_token.clone()
    with torch.no_grad():
        model.backbone.cls_token.add_(1.0)
    model.update_teacher(momentum=0.5)
    torch.testing.assert_close(teacher.cls_token,
                               0.5 * before + 0.5 * model.backbone.cls_token)


@pytest.mark.parametrize('device', DEVICES)
def test_itpn_masks_and_teachers_on_device(device):
    from .test_itpn_mfm import clip_cfg, ema_cfg, samples_with
    clip = MODELS.build(clip_cfg()).to(device)
    img = torch.randn(2, 3, 32, 32, device=device)
    target = clip.target_generator(img)
    assert target.device.type == torch.device(device).type
    assert target.shape == (2, 16, 24)
    # random masks are drawn on the device, pipeline masks copied there
    mask, num_masked = clip.get_mask_and_count(img, None)
    assert mask.device.type == torch.device(device).type
    M = 16 - int(16 * (1 - clip.mask_ratio))
    assert num_masked == M and mask.sum(1).tolist() == [M, M]
    given = torch.zeros(2, 16, dtype=torch.bool)
    given[:, 3:9] = True
    mask, num_masked = clip.get_mask_and_count(img, samples_with(given))
    assert num_masked == 6 and torch.equal(mask.cpu(), given)
    loss = clip.loss(img, samples_with(given))['loss']
    assert loss.device.type == torch.device(device).type
    assert torch.isfinite(loss)

    ema = MODELS.build(ema_cfg()).to(device).train()
    ema.loss(img, samples_with(given))  # the first update copies the student
    t4, t8, t16 = ema.target_generator(img)
    assert t16.device.type == torch.device(device).type
    assert t16.shape == (2, 16, 64)


@pytest.mark.parametrize('device', DEVICES)
def test_sim_geometry_mask_and_momentum_on_device(device, tmp_path):
    model = tiny_model('sim', tmp_path, device).train()  # 4 x 4 patches
    assert model.num_patches == 16
    samples = []
    for i in range(2):
        s = DataSample()
        mask = torch.zeros(4, 4, dtype=torch.bool)
        mask[i:i + 2, 1:3] = True
        mask[3, :] = True  # 8 of 16
        s.set_field(mask.numpy(), 'mask')
        # (i, j, h, w) of view 1 and view 2
        s.set_field([[0., 0., 28., 28.], [2., 3., 30., 26.]], 'crop_boxes')
        s.set_field([False, i == 1], 'flips')
        s.set_field(36, 'img_width')
        samples.append(s)
    mask, num_masked = model.get_mask_and_count(
        torch.zeros(2, 3, 32, 32, device=device), samples)
    assert num_masked == 8 and mask.device.type == torch.device(device).type
    geometry = model.get_geometry(samples, torch.device(device))
    assert geometry.delta_i.device.type == torch.device(device).type
    torch.testing.assert_close(geometry.delta_h.cpu(),
                               torch.full((2, ), 30 / 28, dtype=torch.float64))
    assert geometry.relative_flip.tolist() == [False, True]
    views = [torch.randn(2, 3, 32, 32, device=device) for _ in range(2)]
    target_before = model.momentum_branch.cls_token.clone()
    losses = model.loss(views, samples)
    assert losses['loss'].device.type == torch.device(device).type
    assert torch.isfinite(losses['loss'])
    assert losses['momentum'].item() == pytest.approx(model.momentum)
    m = model.momentum
    torch.testing.assert_close(
        model.momentum_branch.cls_token,
        m * target_before + (1 - m) * model.backbone.cls_token)


# ------------------------------------------ no host-device synchronisation
# ops that make the host wait for the device's result
HOST_SYNC_OPS = {
    aten._local_scalar_dense.default, aten.nonzero.default,
    aten.masked_select.default, aten.is_nonzero.default, aten.equal.default,
    aten._unique2.default, aten.unique_dim.default,
    aten.unique_consecutive.default, aten.repeat_interleave.Tensor,
    aten.argwhere.default
}
INDEX_OPS = {aten.index.Tensor, aten.index_put_.default,
             aten.index_put.default, aten._index_put_impl_.default}


class HostSyncRecorder(TorchDispatchMode):
    """Records the ops that would make the host wait for a CUDA device
    (``.item()``, ``nonzero``, boolean-mask indexing, ...), with where they
    were called from: the CPU stand-in for
    ``torch.cuda.set_sync_debug_mode('error')``."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        syncs = func in HOST_SYNC_OPS
        if func in INDEX_OPS:
            syncs = any(t is not None and t.dtype in (torch.bool, torch.uint8)
                        for t in args[1])
        if syncs:
            where = [f'{f.filename.split("/")[-1]}:{f.lineno}'
                     for f in traceback.extract_stack()
                     if 'mmmim' in f.filename or '/mm' in f.filename]
            self.calls.append((str(func), where[-3:]))
        return func(*args, **(kwargs or {}))


def test_host_sync_recorder_sees_the_syncs():
    from mmmim.models.utils import visible_first_order
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[:, :12] = True
    x = torch.randn(2, 16)
    with HostSyncRecorder() as recorder:
        visible_first_order(mask, 12)  # count known: no read
        x.gather(1, visible_first_order(mask, 12)[0][:, 4:])
    assert recorder.calls == []
    for step in (lambda: visible_first_order(mask),  # reads the counts
                 lambda: x[mask],  # boolean indexing
                 lambda: x.sum().item(),
                 lambda: mask.nonzero()):
        with HostSyncRecorder() as recorder:
            step()
        assert recorder.calls, step


def pretraining_step_parts(method, tmp_path, device):
    """A tiny model of ``method`` on ``device`` with its AdamW optimiser,
    per-iteration hooks and a batch of 4 already on the device (as a
    pinned-memory data loader delivers it)."""
    cfg = tiny_config(method, tmp_path)
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.to(device).train()
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    collate = (pseudo_collate if cfg.train_dataloader.collate_fn.get('type')
               == 'pseudo_collate' else default_collate)
    batch = collate([dataset[i] for i in range(4)])
    batch = model.data_preprocessor.cast_data(batch)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-4)
    hooks = [HOOKS.build(h) for h in cfg.get('custom_hooks', [])
             if h['type'] != 'RepresentationEvalHook']
    return model, optimizer, hooks, batch


def run_step(model, optimizer, hooks, batch, runner):
    data = model.data_preprocessor(batch, True)
    loss = model.parse_losses(model(**data, mode='loss'))[0]
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    for hook in hooks:
        hook.after_train_iter(runner, 0, batch, None)
    return loss.detach()


class _Runner:
    """What the per-iteration hooks read of mmengine's Runner."""

    def __init__(self, model):
        self.model = model
        self.message_hub = MessageHub.get_current_instance()
        for key, value in dict(iter=0, epoch=0, max_iters=10,
                               max_epochs=1).items():
            self.message_hub.update_info(key, value)


@requires_fashion_mnist
@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('method', sorted(TINY))
def test_pretraining_step_makes_no_host_sync(method, device, tmp_path):
    model, optimizer, hooks, batch = pretraining_step_parts(
        method, tmp_path, device)
    runner = _Runner(model)
    run_step(model, optimizer, hooks, batch, runner)  # lazy init, warm-up
    if device == 'cpu':
        # the model's step (forward, backward, hooks); torch's optimiser
        # keeps its step counters in host memory by design
        with HostSyncRecorder() as recorder:
            data = model.data_preprocessor(batch, True)
            loss = model.parse_losses(model(**data, mode='loss'))[0]
            loss.backward()
            for hook in hooks:
                hook.after_train_iter(runner, 0, batch, None)
        assert recorder.calls == []
    else:
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode('error')
        try:
            loss = run_step(model, optimizer, hooks, batch, runner)
        finally:
            torch.cuda.set_sync_debug_mode('default')
    assert torch.isfinite(loss)


# ------------------------------------------ downstream: Mask R-CNN, UperNet
def _skip_without_compiled_mmcv():
    try:
        import mmcv._ext  # noqa: F401
    except ImportError as err:
        pytest.skip('mmdet / mmseg import mmcv.ops, which needs mmcv with '
                    'compiled ops for this Python and torch (tools/install.sh;'
                    f' tools/gpu_prepare.sh --build-mmcv): {err}')


@cuda_only
@requires_fashion_mnist
def test_mask_rcnn_train_and_val_step_on_cuda(tmp_path_factory):
    """The canvas Mask R-CNN config (tiny) trains and predicts on CUDA:
    RoIAlign and NMS take mmcv's CUDA kernels or, with mmcv's CPU build,
    torchvision's (tests/test_detection_ops.py runs the same step on the
    CPU on both routes)."""
    _skip_without_compiled_mmcv()
    from mmmim.datasets.canvas import make_canvas_sets
    from .test_detection_ops import (one_step_and_predictions,
                                     tiny_canvas_mask_rcnn)
    canvas = make_canvas_sets(str(tmp_path_factory.mktemp('canvas')),
                              num_train=2, num_val=2, size=64, seed=3)
    losses, preds = one_step_and_predictions(tiny_canvas_mask_rcnn(canvas),
                                             'cuda')
    for key in ('loss_rpn_cls', 'loss_cls', 'loss_bbox', 'loss_mask'):
        assert torch.isfinite(torch.as_tensor(losses[key])), key
    for p in preds:
        assert len(p.pred_instances) > 0
        assert p.pred_instances.bboxes.device.type == 'cuda'


@requires_fashion_mnist
@pytest.mark.parametrize('device', DEVICES)
def test_upernet_train_and_val_step(device, tmp_path_factory, monkeypatch):
    """The canvas UperNet config (tiny) trains and predicts on the device
    without any mmcv kernel (mmcv's CPU build serves it on a GPU)."""
    _skip_without_compiled_mmcv()
    import mmcv._ext as ext
    from mmengine import Config
    from mmengine.optim import build_optim_wrapper

    from mmmim.datasets.canvas import make_canvas_sets
    from mmseg.registry import MODELS as SEG_MODELS
    from .test_transfer_configs import _batch_from_dataset, _tiny_seg
    for name in dir(ext):
        if not name.startswith('_') and callable(getattr(ext, name)):
            monkeypatch.setattr(
                ext, name,
                lambda *a, _n=name, **k: pytest.fail(f'mmcv kernel {_n}'))
    canvas = make_canvas_sets(str(tmp_path_factory.mktemp('canvas')),
                              num_train=2, num_val=2, size=64, seed=3)
    cfg = _tiny_seg(Config.fromfile(
        'configs/benchmarks/upernet/canvas_mae-vit-demo_upernet.py'), canvas)
    data = _batch_from_dataset(cfg.train_dataloader.dataset, 'mmseg')
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = SEG_MODELS.build(cfg.model).to(device)
        model.init_weights()
        ow = build_optim_wrapper(
            model, dict(type='OptimWrapper',
                        optimizer=dict(type='AdamW', lr=1e-3)))
        model.train()
        losses = model.train_step(copy.deepcopy(data), ow)
        model.eval()
        with torch.no_grad():
            preds = model.val_step(data)
    assert torch.isfinite(losses['decode.loss_ce'])
    assert torch.isfinite(losses['aux.loss_ce'])
    assert preds[0].pred_sem_seg.data.device.type == torch.device(device).type
    assert preds[0].pred_sem_seg.data.shape[-2:] == (64, 64)


# ------------------------------------------------------------- exact resume
# last in the file (two short trainings per method): a GPU test phase that
# reaches its time limit (tools/gpu_check.sh) loses these, not the downstream
# steps above
@cuda_only
@requires_fashion_mnist
@pytest.mark.parametrize('method', sorted(TINY))
def test_exact_resume_on_cuda(method, tmp_path):
    """tests/test_exact_resume.py's runs on the GPU (the Runner takes it)
    with deterministic kernels (conftest sets CUBLAS_WORKSPACE_CONFIG before
    CUDA starts; an op without a deterministic kernel only warns)."""
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    from .test_exact_resume import LossRecorder

    class DeviceRecorder(Hook):
        def before_train(self, runner):
            devices.append(next(runner.model.parameters()).device.type)

    def train_on(cfg):
        runner = Runner.from_cfg(cfg)
        recorder = LossRecorder()
        runner.register_hook(recorder)
        runner.register_hook(DeviceRecorder())
        runner.train()
        return recorder.losses

    devices = []
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        full = train_on(tiny_config(method, tmp_path / 'full'))
        cfg = tiny_config(method, tmp_path / 'resumed')
        cfg.resume = True
        cfg.load_from = str(tmp_path / 'full' / 'iter_3.pth')
        resumed = train_on(cfg)
    finally:
        torch.use_deterministic_algorithms(False)
    assert devices == ['cuda', 'cuda']
    assert sorted(resumed) == [4, 5, 6]
    for it in (4, 5, 6):
        assert resumed[it] == full[it], f'iteration {it}'
