"""HPM: losses, easy-to-hard masks, EMA teacher and the algorithm (tiny, CPU)."""
import copy
import math

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.structures import BaseDataElement

from mmpretrain.registry import MODELS
from mmmim.models.losses.hpm_losses import (patch_cosine_distance,
                                            relative_ranking_loss,
                                            standardized_mse_loss)
from mmmim.models.target_generators.hpm_target import (hard_patch_mask,
                                                       num_hard_patches)

IMG, PATCH, DIM, DEC = 16, 4, 32, 16
L = (IMG // PATCH)**2


def tiny_hpm_cfg(target='pixel', loss='HPMRelativeLoss', **tg):
    feat_dim = {'pixel': None, 'hog': 3 * 9 * (PATCH // 2)**2,
                'teacher': DIM}[target]
    cfg = dict(
        type='HPMPretrainer',
        mask_ratio=0.75,
        target=target,
        backbone=dict(
            type='MaskedViT',
            arch=dict(embed_dims=DIM, num_layers=1, num_heads=2,
                      feedforward_channels=2 * DIM),
            img_size=IMG, patch_size=PATCH),
        neck=dict(
            type='MAEDecoder', num_patches=L, patch_size=PATCH, in_chans=3,
            embed_dim=DIM, decoder_embed_dim=DEC, decoder_depth=1,
            decoder_num_heads=2, predict_feature_dim=feat_dim),
        head=dict(type='MAEPretrainHead', norm_pix=False, patch_size=PATCH,
                  loss=dict(type='PixelReconstructionLoss', criterion='L2')),
        loss_predictor=dict(
            type='LossPredictorHead', embed_dims=DEC, depth=1, num_heads=2,
            out_channels=PATCH * PATCH * 3, loss=dict(type=loss)),
        target_generator=dict(type='HPMTarget', **tg))
    if target == 'hog':
        cfg['hog_cfg'] = dict(pool=2, gaussian_window=IMG)
    return cfg


def build(cfg):
    model = MODELS.build(cfg)
    model.init_weights()
    return model


# ----------------------------------------------------------------- losses
def brute_force_relative(pred, target, eps=1e-6):
    total, count = 0., 0
    for b in range(pred.shape[0]):
        for i in range(pred.shape[1]):
            for j in range(pred.shape[1]):
                li, lj = float(target[b, i]), float(target[b, j])
                if li == lj:
                    continue
                y = 1. if lj > li else 0.
                p = 1. / (1. + math.exp(-(float(pred[b, j]) -
                                          float(pred[b, i]))))
                total += -(y * math.log(p + eps) +
                           (1 - y) * math.log(1 - p + eps))
                count += 1
    return total / count


def test_relative_loss_equals_double_loop_with_ties():
    g = torch.Generator().manual_seed(1)
    pred = torch.randn(3, 7, generator=g, dtype=torch.float64)
    # few distinct values -> many ties, which must be excluded
    target = torch.randint(0, 4, (3, 7), generator=g).double()
    assert (target.unsqueeze(1) == target.unsqueeze(2)).sum() > 3 * 7
    expected = brute_force_relative(pred, target)
    got = relative_ranking_loss(pred, target)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # continuous targets (no ties): number of valid pairs = B M (M - 1)
    t2 = torch.rand(2, 5, generator=g)
    p2 = torch.randn(2, 5, generator=g)
    assert relative_ranking_loss(p2, t2).item() == pytest.approx(
        brute_force_relative(p2, t2), rel=1e-5)


def test_relative_loss_gradient_and_all_ties():
    pred = torch.randn(2, 4, requires_grad=True)
    loss = relative_ranking_loss(pred, torch.ones(2, 4))
    assert loss.item() == 0.
    loss.backward()  # keeps the graph even with no valid pair
    assert torch.equal(pred.grad, torch.zeros(2, 4))


def test_mse_variant_equals_formula():
    g = torch.Generator().manual_seed(2)
    pred, target = torch.randn(3, 6, generator=g), torch.rand(3, 6,
                                                              generator=g)
    expected = 0.
    for b in range(3):
        t = target[b]
        mean = t.sum() / 6
        var = ((t - mean)**2).sum() / 5  # unbiased
        z = (t - mean) / torch.sqrt(var + 1e-6)
        expected += ((pred[b] - z)**2).sum()
    expected /= 18
    assert standardized_mse_loss(pred, target).item() == pytest.approx(
        expected.item(), rel=1e-5)


def test_patch_cosine_distance():
    p, t = torch.randn(2, 3, 8), torch.randn(2, 3, 8)
    pn, tn = p / p.norm(dim=-1, keepdim=True), t / t.norm(dim=-1,
                                                         keepdim=True)
    torch.testing.assert_close(
        patch_cosine_distance(p, t), 2 - 2 * (pn * tn).sum(-1))


# ----------------------------------------------------------------- masks
@pytest.mark.parametrize('epoch,k', [(0, 0), (399, 36), (799, 73)])
def test_num_hard_patches_reference_values(epoch, k):
    assert num_hard_patches(147, epoch, 800) == k
    tg = MODELS.build(dict(type='HPMTarget', mask_ratio=0.75))
    assert tg.num_masked(196) == 147
    assert tg.num_hard(196, epoch, 800) == k


@pytest.mark.parametrize('epoch,k', [(0, 0), (399, 36), (799, 73)])
def test_hard_mask_from_runner_position(epoch, k):
    hub = MessageHub.get_instance('test_hpm_mask')
    hub.update_info('epoch', epoch)
    hub.update_info('max_epochs', 800)
    tg = MODELS.build(dict(type='HPMTarget', mask_ratio=0.75))
    assert MessageHub.get_current_instance() is hub
    scores = torch.randn(16, 196)
    masks = [tg.generate_mask(scores) for _ in range(3)]
    hard = scores.topk(k, dim=1).indices if k else None
    for mask in masks:
        assert mask.dtype == torch.bool and mask.shape == (16, 196)
        assert (mask.sum(1) == 147).all()
        if k:
            assert mask.gather(1, hard).all()
    # the random part differs between calls
    assert not torch.equal(masks[0], masks[1])


def test_hard_mask_random_part_is_uniform():
    scores = torch.arange(20.).repeat(4000, 1)  # patch 19 hardest
    mask = hard_patch_mask(scores, num_masked=10, num_hard=4)
    assert mask[:, 16:].all()  # the 4 hardest always masked
    # 6 of the other 16 masked uniformly: frequency 6/16 each
    freq = mask[:, :16].float().mean(0)
    assert torch.allclose(freq, torch.full((16,), 6 / 16), atol=0.03)


def test_by_iter_ramp():
    hub = MessageHub.get_instance('test_hpm_iter')
    hub.update_info('iter', 499)
    hub.update_info('max_iters', 1000)
    hub.update_info('epoch', 0)
    hub.update_info('max_epochs', 1)
    tg = MODELS.build(dict(type='HPMTarget', by_iter=True,
                           momentum_warmup=1000))
    assert tg.num_hard(196) == int(147 * (500 / 1000 * 0.5))
    assert tg.momentum() == pytest.approx(0.999 + 0.499 * 0.0009)


# ----------------------------------------------------------------- teacher
def test_momentum_schedule():
    tg = MODELS.build(dict(type='HPMTarget'))
    assert tg.momentum(0) == 0.999
    assert tg.momentum(50) == pytest.approx(0.99945, abs=1e-12)
    assert tg.momentum(99) == pytest.approx(0.999 + 0.99 * 0.0009,
                                            abs=1e-12)
    assert tg.momentum(100) == 0.9999
    assert tg.momentum(799) == 0.9999
    MessageHub.get_instance('test_hpm_no_runner')  # no schedule info
    assert tg.momentum() == 0.999  # outside a runner: position 0
    hub = MessageHub.get_instance('test_hpm_tau')
    hub.update_info('epoch', 30)
    hub.update_info('max_epochs', 800)
    assert tg.momentum() == pytest.approx(0.999 + 0.3 * 0.0009, abs=1e-12)


def test_teacher_no_grad_and_ema_rule_after_optimizer_step():
    hub = MessageHub.get_instance('test_hpm_ema')
    hub.update_info('epoch', 10)
    hub.update_info('max_epochs', 800)
    model = build(tiny_hpm_cfg())
    teacher = model.target_generator.teacher
    # teacher starts equal to the initialised student
    for name, part in model.student_parts().items():
        for (k, v), (k2, t) in zip(part.state_dict().items(),
                                   teacher[name].state_dict().items()):
            assert k == k2 and torch.equal(v, t)
    assert not any(p.requires_grad for p in teacher.parameters())
    opt = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.5)
    before = copy.deepcopy(teacher.state_dict())
    losses = model.loss(torch.randn(2, 3, IMG, IMG), None)
    sum(losses.values()).backward()
    assert all(p.grad is None for p in teacher.parameters())
    opt.step()
    tau = model.update_teacher()
    assert tau == pytest.approx(0.999 + 0.1 * 0.0009, abs=1e-12)
    changed = 0
    student = {f'{n}.{k}': v for n, part in model.student_parts().items()
               for k, v in part.state_dict().items()}
    for k, v in teacher.state_dict().items():
        expected = tau * before[k] + (1 - tau) * student[k]
        torch.testing.assert_close(v, expected, rtol=1e-6, atol=1e-7)
        changed += not torch.equal(v, before[k])
    assert changed > 10
    # the trained loss predictor moved the teacher's copy too
    assert not torch.equal(
        teacher['loss_predictor'].pred.weight,
        before['loss_predictor.pred.weight'])


def test_teacher_in_state_dict_and_eval_mode():
    model = build(tiny_hpm_cfg())
    keys = model.state_dict().keys()
    for part in ('backbone', 'neck', 'loss_predictor'):
        assert any(k.startswith(f'target_generator.teacher.{part}.')
                   for k in keys)
    model.train()
    assert model.backbone.training
    assert not model.target_generator.teacher.training


# ----------------------------------------------------------------- algorithm
def test_algorithm_losses_match_hand_computation():
    model = build(tiny_hpm_cfg())
    x = torch.randn(2, 3, IMG, IMG)
    mask = torch.zeros(2, L, dtype=torch.bool)
    mask[0, [0, 3, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15]] = True
    mask[1, [1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14]] = True
    samples = [BaseDataElement(mask=m) for m in mask]
    out = model.loss(x, samples)
    assert set(out) == {'loss_rec', 'loss_pred'}
    # recompute by hand from the parts
    latent, ids_restore = model.backbone(x, mask)
    tokens = model.neck.embed_tokens(latent, ids_restore)
    pred = model.neck.decode(tokens)
    target = model.head.patchify(x)
    per_patch = ((pred - target)**2).mean(-1)
    rec = per_patch[mask].mean()
    scores = model.loss_predictor(tokens)
    rel = relative_ranking_loss(scores[mask].view(2, -1),
                                per_patch[mask].view(2, -1))
    assert out['loss_rec'].item() == pytest.approx(rec.item(), rel=1e-5)
    assert out['loss_pred'].item() == pytest.approx(rel.item(), rel=1e-5)
    # gradient of loss_pred reaches the encoder (input not detached)
    model.zero_grad()
    out = model.loss(x, samples)
    out['loss_pred'].backward()
    assert model.backbone.layers[0].attn.qkv.weight.grad.abs().sum() > 0
    assert model.neck.decoder_embed.weight.grad.abs().sum() > 0
    assert model.neck.decoder_pred.weight.grad is None


def test_explicit_mask_overrides_teacher(monkeypatch):
    model = build(tiny_hpm_cfg())
    called = []
    orig = model.target_generator.generate_mask
    monkeypatch.setattr(model.target_generator, 'generate_mask',
                        lambda *a, **k: called.append(1) or orig(*a, **k))
    seen = []
    orig_bb = model.backbone.forward
    monkeypatch.setattr(model.backbone, 'forward',
                        lambda x, m=None, *rest: seen.append(m) or
                        orig_bb(x, m, *rest))
    mask = torch.zeros(2, L, dtype=torch.bool)
    mask[:, :12] = True
    model.loss(torch.randn(2, 3, IMG, IMG),
               [BaseDataElement(mask=m) for m in mask])
    assert not called and torch.equal(seen[-1], mask)
    # without a pipeline mask the teacher's mask is used
    model.loss(torch.randn(2, 3, IMG, IMG), None)
    assert called and seen[-1].sum(1).tolist() == [12, 12]


def test_teacher_mask_uses_teacher_scores(monkeypatch):
    model = build(tiny_hpm_cfg(guide=False))  # K = int(12 * 0.5) = 6
    scores = torch.randn(2, L)
    feats = torch.randn(2, L, DIM)
    monkeypatch.setattr(model.target_generator, 'forward',
                        lambda x: (scores, feats))
    seen = []
    orig_bb = model.backbone.forward
    monkeypatch.setattr(model.backbone, 'forward',
                        lambda x, m=None, *rest: seen.append(m) or
                        orig_bb(x, m, *rest))
    model.loss(torch.randn(2, 3, IMG, IMG), None)
    assert seen[0].gather(1, scores.topk(6, 1).indices).all()


def test_teacher_forward_full_image():
    model = build(tiny_hpm_cfg())
    x = torch.randn(2, 3, IMG, IMG)
    scores, feats = model.target_generator(x)
    assert scores.shape == (2, L) and feats.shape == (2, L, DIM)
    # identical to the student's parts on an all-visible image (same weights)
    latent, ids = model.backbone(x, torch.zeros(2, L, dtype=torch.bool))
    with torch.no_grad():
        expect = model.loss_predictor(model.neck.embed_tokens(latent, ids))
    torch.testing.assert_close(scores, expect)


@pytest.mark.parametrize('target', ['hog', 'teacher'])
def test_other_targets(target):
    model = build(tiny_hpm_cfg(target, loss='HPMStandardizedMSELoss'))
    x = torch.randn(2, 3, IMG, IMG)
    mask = torch.zeros(2, L, dtype=torch.bool)
    mask[:, 4:] = True
    out = model.loss(x, [BaseDataElement(mask=m) for m in mask])
    latent, ids = model.backbone(x, mask)
    tokens = model.neck.embed_tokens(latent, ids)
    pred = model.neck.decode(tokens)
    if target == 'hog':
        t = model.hog(x)
        assert t.shape == (2, L, 3 * 9 * 4)
        per_patch = ((pred - t)**2).mean(-1)
    else:
        t = model.target_generator(x)[1]
        per_patch = patch_cosine_distance(pred, t)
    assert out['loss_rec'].item() == pytest.approx(
        per_patch[mask].mean().item(), rel=1e-5)
    scores = model.loss_predictor(tokens)
    assert out['loss_pred'].item() == pytest.approx(
        standardized_mse_loss(scores[mask].view(2, -1),
                              per_patch[mask].view(2, -1)).item(), rel=1e-5)
