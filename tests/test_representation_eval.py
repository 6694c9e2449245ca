import importlib.util
import json
import math
import os
import os.path as osp
import socket
import textwrap

import pytest
import torch
import torch.multiprocessing as mp
from mmengine.registry import init_default_scope

from mmpretrain.registry import HOOKS, MODELS

from .conftest import requires_fashion_mnist
from mmmim.evaluation import (evaluate_features, evaluate_model,
                              extract_features, fashion_mnist_splits,
                              knn_accuracy, linear_probe_accuracy,
                              pool_features)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

TINY_VIT = dict(
    type='mmpretrain.VisionTransformer',
    arch=dict(embed_dims=32, num_layers=1, num_heads=2,
              feedforward_channels=64),
    img_size=32,
    patch_size=8,
    out_type='featmap')
PREPROCESSOR = dict(type='SelfSupDataPreprocessor', mean=[72.94] * 3,
                    std=[90.02] * 3, to_rgb=False)


def _blobs(num_per_class, num_classes=4, dim=16, spread=0.3, seed=0):
    # Fixed class centres; ``seed`` draws the noise.
    centers = torch.randn(num_classes, dim,
                          generator=torch.Generator().manual_seed(99)) * 3
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_classes).repeat_interleave(num_per_class)
    feats = centers[labels] + spread * torch.randn(
        labels.numel(), dim, generator=g)
    return feats, labels


# ---------------------------------------------------------------- kNN ---
def test_knn_separable_is_perfect():
    train = _blobs(50, seed=0)
    test = _blobs(20, seed=1)
    assert knn_accuracy(*train, *test, k=20) == 100.0


def test_knn_hand_computed():
    # Bank (cosine similarity is scale-free): a=(1,0) class 0, b=(0,1)
    # class 1, c=(1,1) class 1, d=(-1,0) class 2.
    train = torch.tensor([[1., 0.], [0., 1.], [2., 2.], [-1., 0.]])
    train_labels = torch.tensor([0, 1, 1, 2])
    # q1=(1,0.2) label 0: sims a .9806, c .8321, b .1961, d -.9806.
    # q2=(-1,0.1) label 2: sims d .9950, b .0995, c -.6330, a -.9950.
    test = torch.tensor([[1., 0.2], [-1., 0.1]])
    test_labels = torch.tensor([0, 2])
    # k=3, T=1: q1 votes class 0: e^.9806 = 2.666, class 1: e^.8321 +
    # e^.1961 = 2.298 + 1.217 = 3.515 -> predicts 1 (wrong); q2 votes
    # class 2: e^.9950 = 2.705, class 1: e^.0995 + e^-.6330 = 1.636 -> 2.
    assert knn_accuracy(train, train_labels, test, test_labels, k=3,
                        temperature=1.0) == 50.0
    # T=0.07 sharpens the votes: class 0 e^14.01 beats e^11.89 + e^2.80.
    assert knn_accuracy(train, train_labels, test, test_labels, k=3,
                        temperature=0.07) == 100.0
    # k=1 is the nearest neighbour; k > N is clipped to N (all 4 vote).
    assert knn_accuracy(train, train_labels, test, test_labels, k=1) == 100.0
    # With k=4, T=1, q1: class 0 2.666 vs class 1 3.515 -> wrong again;
    # q2: class 2 2.705 vs class 1 1.636 (+ class 0 e^-.995=.370) -> right.
    assert knn_accuracy(train, train_labels, test, test_labels, k=100,
                        temperature=1.0) == 50.0
    # Chunking does not change the result.
    assert knn_accuracy(train, train_labels, test, test_labels, k=3,
                        temperature=1.0, chunk_size=1) == 50.0
    # The vote values above, recomputed.
    sims = torch.nn.functional.normalize(test, dim=1) @ \
        torch.nn.functional.normalize(train, dim=1).T
    assert math.isclose(float(sims[0, 0].exp()), 2.666, abs_tol=1e-3)
    assert math.isclose(float(sims[0, 2].exp() + sims[0, 1].exp()), 3.515,
                        abs_tol=1e-3)


def test_knn_errors():
    feats, labels = _blobs(3)
    with pytest.raises(ValueError, match='k must be'):
        knn_accuracy(feats, labels, feats, labels, k=0)
    with pytest.raises(ValueError, match='temperature'):
        knn_accuracy(feats, labels, feats, labels, temperature=0)


# -------------------------------------------------------- linear probe ---
def test_linear_probe_learns_separable_data():
    # Labels given by the sign of a linear function: linearly separable,
    # while the classes are not clusters (kNN on them is imperfect).
    g = torch.Generator().manual_seed(0)
    w = torch.randn(8, generator=g)
    x = torch.randn(600, 8, generator=g)
    margin = x @ w
    keep = margin.abs() > 0.5
    x, y = x[keep], (margin[keep] > 0).long()
    train, test = (x[:400], y[:400]), (x[400:], y[400:])
    acc = linear_probe_accuracy(*train, *test, epochs=20)
    assert acc == 100.0
    # AdamW variant too.
    assert linear_probe_accuracy(*train, *test, epochs=20, optimizer='adamw',
                                 lr=0.1) == 100.0


def test_linear_probe_deterministic_and_rng_neutral():
    train = _blobs(30, spread=8.0, seed=1)
    test = _blobs(10, spread=8.0, seed=2)
    state = torch.get_rng_state()
    a = linear_probe_accuracy(*train, *test, epochs=3, batch_size=16, seed=0)
    assert torch.equal(torch.get_rng_state(), state)
    b = linear_probe_accuracy(*train, *test, epochs=3, batch_size=16, seed=0)
    assert a == b
    # Overlapping blobs: far above chance (25%), below perfect.
    assert 50.0 < a < 90.0
    res = evaluate_features(*train, *test,
                            linear_cfg=dict(epochs=3, batch_size=16))
    assert res['linear_top1'] == a
    assert res['knn_top1'] == knn_accuracy(*train, *test)


def test_pool_features():
    assert pool_features((torch.ones(2, 3, 4, 4) * 2, )).tolist() == \
        [[2.] * 3] * 2
    x = torch.arange(12.).reshape(1, 3, 2, 2)
    assert pool_features((torch.zeros(1, 5, 2, 2), x)).tolist() == \
        [[1.5, 5.5, 9.5]]
    assert pool_features(torch.ones(2, 7, 5)).shape == (2, 5)
    assert pool_features([torch.ones(2, 5)]).shape == (2, 5)


def _synthetic_dataset(num=6, size=32):
    from mmpretrain.registry import TRANSFORMS
    pack = TRANSFORMS.build(dict(type='PackInputs'))
    g = torch.Generator().manual_seed(0)
    imgs = torch.randint(0, 256, (num, size, size, 3), generator=g,
                         dtype=torch.uint8).numpy()
    return [pack(dict(img=img, gt_label=i % 3)) for i, img in enumerate(imgs)]


def test_extract_features_unmasked_and_mode_restored():
    # mmpretrain's MAEViT masks randomly unless forward gets mask=None: the
    # features must be the deterministic, unmasked ones.
    init_default_scope('mmpretrain')
    model = MODELS.build(dict(
        type='SimCLR',
        backbone=dict(type='MAEViT', arch=dict(
            embed_dims=32, num_layers=1, num_heads=2,
            feedforward_channels=64), img_size=32, patch_size=8),
        data_preprocessor=PREPROCESSOR))
    model.train()
    data = _synthetic_dataset()
    feats, labels = extract_features(model, data, batch_size=4)
    again, _ = extract_features(model, data, batch_size=6)
    assert model.training  # restored
    assert feats.shape == (6, 32) and labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert torch.allclose(feats, again, atol=1e-5)
    model.eval()
    with torch.no_grad():
        batch = model.data_preprocessor(
            {'inputs': torch.stack([d['inputs'] for d in data]),
             'data_samples': [d['data_samples'] for d in data]}, False)
        tokens = model.backbone(batch['inputs'], mask=None)[0]
    assert tokens.shape == (6, 17, 32)  # all 16 patches + cls: unmasked
    assert torch.allclose(feats, tokens.mean(1), atol=1e-5)


# ------------------------------------------------------------ the tool ---
def _load_tool():
    path = osp.join(ROOT, 'tools', 'analysis', 'evaluate_representation.py')
    spec = importlib.util.spec_from_file_location('evaluate_representation',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_config(tmp_path):
    cfg = tmp_path / 'tiny_cfg.py'
    cfg.write_text(textwrap.dedent(f"""
        default_scope = 'mmpretrain'
        img_size = 32
        data_preprocessor = {PREPROCESSOR!r}
        model = dict(type='SimCLR', backbone={TINY_VIT!r})
    """))
    return str(cfg)


def _build(seed):
    init_default_scope('mmpretrain')
    torch.manual_seed(seed)
    return MODELS.build(dict(type='SimCLR', backbone=TINY_VIT,
                             data_preprocessor=PREPROCESSOR)).eval()


@requires_fashion_mnist
def test_tool_end_to_end(tmp_path, capsys):
    tool = _load_tool()
    cfg = _write_config(tmp_path)
    trained = _build(seed=123)
    ckpt = str(tmp_path / 'ckpt.pth')
    torch.save({'state_dict': trained.state_dict(), 'meta': {}}, ckpt)
    out_json = str(tmp_path / 'res.json')
    res = tool.main([cfg, '--checkpoint', ckpt, '--compare-random-init',
                     '--num-train', '200', '--num-test', '100', '--k', '5',
                     '--linear-epochs', '5', '--out-json', out_json])
    printed = capsys.readouterr().out
    report = res['load_report']
    n_backbone = len(trained.backbone.state_dict())
    assert report['loaded'] == report['total'] == n_backbone
    assert report['missing'] == report['unexpected'] == []
    assert res['num_train'] == 200 and res['num_test'] == 100
    assert res['img_size'] == 32  # from the config's img_size

    # The checkpoint numbers are those of the saved model itself.
    train_set, test_set = fashion_mnist_splits(32, 200, 100)
    expected = evaluate_model(trained, train_set, test_set, k=5,
                              linear_cfg=dict(epochs=5))
    ck, rnd = res['checkpoint'], res['random_init']
    assert ck['knn_top1'] == expected['knn_top1']
    assert ck['linear_top1'] == expected['linear_top1']
    assert res['difference']['knn_top1'] == ck['knn_top1'] - rnd['knn_top1']
    # A tiny random ViT is far above chance (10%) on Fashion-MNIST.
    assert 30.0 < ck['knn_top1'] <= 100.0
    assert 30.0 < rnd['knn_top1'] <= 100.0

    assert f"kNN top-1: {ck['knn_top1']:.2f}" in printed
    assert 'linear probe top-1' in printed and 'difference' in printed
    with open(out_json) as f:
        assert json.load(f)['checkpoint']['knn_top1'] == ck['knn_top1']


@requires_fashion_mnist
def test_tool_backbone_only_and_bad_checkpoints(tmp_path):
    tool = _load_tool()
    cfg = _write_config(tmp_path)
    trained = _build(seed=7)
    # A backbone state dict without the 'backbone.' prefix loads too.
    ckpt = str(tmp_path / 'backbone.pth')
    torch.save(trained.backbone.state_dict(), ckpt)
    res = tool.main([cfg, '--checkpoint', ckpt, '--num-train', '50',
                     '--num-test', '20', '--no-linear', '--k', '3'])
    assert res['load_report']['loaded'] == res['load_report']['total']
    assert 'linear_top1' not in res['checkpoint']
    # Missing keys are reported, unrelated checkpoints fail loudly.
    partial = {k: v for k, v in trained.state_dict().items()
               if 'layers.0' not in k}
    torch.save({'state_dict': partial}, ckpt)
    res = tool.main([cfg, '--checkpoint', ckpt, '--num-train', '50',
                     '--num-test', '20', '--no-linear'])
    missing = res['load_report']['missing']
    assert missing and all('layers.0' in k for k in missing)
    torch.save({'state_dict': {'head.fc.weight': torch.zeros(2, 2)}}, ckpt)
    with pytest.raises(RuntimeError, match='no backbone parameter'):
        tool.main([cfg, '--checkpoint', ckpt, '--num-train', '50',
                   '--num-test', '20'])
    with pytest.raises(SystemExit):
        tool.main([cfg])  # neither --checkpoint nor --random-init


# ------------------------------------------------------------ the hook ---
@requires_fashion_mnist
@pytest.mark.parametrize('by_epoch', [False, True])
def test_hook_logs_in_runner(tmp_path, by_epoch):
    from mmengine.runner import Runner
    hook_cfg = dict(type='RepresentationEvalHook', interval=1,
                    by_epoch=by_epoch, num_train=64, num_test=32, k=5,
                    linear_probe=True, linear_cfg=dict(epochs=2),
                    eval_before_train=by_epoch)
    if by_epoch:  # 2 epochs of 2 iterations
        train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2)
        steps, unit, last = [0, 2, 4], 'epoch', 2
    else:
        train_cfg = dict(type='IterBasedTrainLoop', max_iters=2)
        steps, unit, last = [1, 2], 'iter', 2
    runner = Runner(
        model=dict(
            type='ImageClassifier',
            backbone=TINY_VIT,
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=10, in_channels=32),
            data_preprocessor=dict(type='ClsDataPreprocessor',
                                   mean=[72.94] * 3, std=[90.02] * 3)),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            batch_size=8, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate'),
            dataset=dict(type='FashionMNISTIDX', split='train', img_size=32,
                         num_samples=16,
                         pipeline=[dict(type='PackInputs')])),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=train_cfg,
        custom_hooks=[hook_cfg],
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1),
                           checkpoint=None),
        default_scope='mmpretrain',
        randomness=dict(seed=0),
        cfg=dict(img_size=32))
    runner.train()
    knn = runner.message_hub.get_scalar('repr/knn_top1')
    linear = runner.message_hub.get_scalar('repr/linear_top1')
    assert len(knn.data[0]) == len(steps) == len(linear.data[0])
    # The last logged value is the trained model's accuracy.
    train_set, test_set = fashion_mnist_splits(32, 64, 32)
    expected = evaluate_model(runner.model, train_set, test_set, k=5,
                              linear_probe=True, linear_cfg=dict(epochs=2))
    assert knn.current() == expected['knn_top1']
    assert linear.current() == expected['linear_top1']
    assert runner.model.training  # the mode was restored
    # It reached the visualizer backend (scalars.json, at iteration steps)
    # and the log file.
    scalars = [json.loads(line) for line in open(
        osp.join(runner.log_dir, 'vis_data', 'scalars.json'))]
    logged = [s for s in scalars if 'repr/knn_top1' in s]
    assert [s['step'] for s in logged] == steps
    log_file = osp.join(runner.log_dir, f'{runner.timestamp}.log')
    assert f'Representation eval ({unit} {last})' in open(log_file).read()


def test_hook_errors():
    with pytest.raises(ValueError, match='interval'):
        HOOKS.build(dict(type='RepresentationEvalHook', interval=0))
    with pytest.raises(ValueError, match='both'):
        HOOKS.build(dict(type='RepresentationEvalHook',
                         train_dataset=dict(type='FashionMNISTIDX')))


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world_size, port, out_dir):
    import types

    import torch.distributed as dist
    from mmengine.logging import MessageHub, MMLogger

    torch.set_num_threads(1)  # before any op in the forked child
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    model = _build(seed=0)
    hook = HOOKS.build(dict(type='RepresentationEvalHook', by_epoch=False,
                            num_train=32, num_test=16, k=3, img_size=32))
    logged = {}
    runner = types.SimpleNamespace(
        model=model, cfg={}, iter=0,
        message_hub=MessageHub.get_instance(f'ddp_test_{rank}'),
        visualizer=types.SimpleNamespace(
            add_scalars=lambda scalars, step: logged.update(scalars)),
        logger=MMLogger.get_instance(f'ddp_test_{rank}'))
    hook._evaluate(runner, 1, 1)
    logged['built_datasets'] = hook._datasets is not None
    # A failure on rank 0 is raised on every rank instead of hanging them.
    hook.data_root = '/nonexistent'  # rank 0 fails to build the data
    hook._datasets, hook._last_step = None, None
    try:
        hook._evaluate(runner, 2, 2)
    except RuntimeError as exc:
        logged['error'] = 'failed on rank 0' in str(exc)
    with open(osp.join(out_dir, f'rank{rank}.json'), 'w') as f:
        json.dump(logged, f)
    dist.destroy_process_group()


@requires_fashion_mnist
def test_hook_ddp_rank0_only_no_hang(tmp_path):
    # fork: the children inherit the imported stack (spawn re-imports it,
    # 10+ s per process on 2 cores).
    ctx = mp.get_context('fork')
    port = _free_port()
    procs = [ctx.Process(target=_ddp_worker,
                         args=(rank, 2, port, str(tmp_path)))
             for rank in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    alive = [p.is_alive() for p in procs]
    for p in procs:
        if p.is_alive():
            p.kill()
    assert not any(alive), 'a rank hung'
    assert [p.exitcode for p in procs] == [0, 0]
    results = [json.load(open(tmp_path / f'rank{r}.json')) for r in (0, 1)]
    # Rank 1 did not evaluate but received rank 0's result.
    assert results[0]['built_datasets'] and not results[1]['built_datasets']
    assert results[0]['repr/knn_top1'] == results[1]['repr/knn_top1']
    assert 0.0 <= results[0]['repr/knn_top1'] <= 100.0
    assert results[0]['error'] and results[1]['error']
