"""The HPM, SIM and iTPN design switches of the ablations."""
import copy

import numpy as np
import pytest
import torch

from mmpretrain.registry import MODELS, TRANSFORMS
from mmpretrain.structures import DataSample

from tests.test_hpm import L, build, tiny_hpm_cfg
from tests.test_itpn_models import tiny_pixel_cfg
from tests.test_sim import TINY as TINY_SIM
from tests.test_sim import _inputs, _samples


def samples_with(mask):
    out = []
    for m in mask:
        s = DataSample()
        s.set_field(m.to(torch.uint8), 'mask')
        out.append(s)
    return out


# ------------------------------------------------------------------ HPM
def test_hpm_student_predictions_rank_the_patches(monkeypatch):
    model = build(tiny_hpm_cfg(predictor='student', guide=False,
                               hard_ratio=1.0))
    with torch.no_grad():  # make teacher and student disagree
        for p in model.loss_predictor.parameters():
            p.add_(torch.randn_like(p))
    img = torch.randn(2, 3, 16, 16)
    student_scores, _ = model.target_generator(img, model.student_parts())
    teacher_scores, _ = model.target_generator(img)
    assert not torch.allclose(student_scores, teacher_scores)
    scores, _ = model.rank_patches(img)
    torch.testing.assert_close(scores, student_scores)
    # hard_ratio 1, no ramp: the masked patches are exactly the student's
    # top-M predicted losses
    mask = model.get_mask(img, None)
    M = L - int(L * 0.25)
    top = student_scores.topk(M, dim=1).indices
    expected = torch.zeros_like(mask).scatter_(1, top, True)
    assert torch.equal(mask, expected)
    # no gradient flows through the ranking pass
    assert not scores.requires_grad
    with pytest.raises(ValueError, match="predictor='teacher'"):
        build(tiny_hpm_cfg(target='teacher', predictor='student'))


def test_hpm_fixed_hard_ratio_and_mse_predictor_switches():
    model = build(tiny_hpm_cfg(loss='HPMStandardizedMSELoss', guide=False,
                               hard_ratio=0.25))
    M = L - int(L * 0.25)
    assert model.target_generator.num_hard(L, 0, 100) == int(M * 0.25)
    assert model.target_generator.num_hard(L, 99, 100) == int(M * 0.25)
    ramp = build(tiny_hpm_cfg(hard_ratio=0.25))
    assert ramp.target_generator.num_hard(L, 0, 100) == 0


# ------------------------------------------------------------------ SIM
def test_sim_same_crop_views():
    np.random.seed(0)
    t = TRANSFORMS.build(dict(type='SIMTwoViews', size=16, same_crop=True,
                              view1_pipeline=[], view2_pipeline=[]))
    img = np.random.randint(0, 255, (40, 48, 3), dtype=np.uint8)
    for _ in range(5):
        out = t(dict(img=img))
        assert np.array_equal(out['img'][0], out['img'][1])
        assert np.array_equal(out['crop_boxes'][0], out['crop_boxes'][1])
        assert out['flips'][0] == out['flips'][1]
    diff = TRANSFORMS.build(dict(type='SIMTwoViews', size=16,
                                 view1_pipeline=[], view2_pipeline=[]))
    boxes = [diff(dict(img=img))['crop_boxes'] for _ in range(5)]
    assert any(not np.array_equal(b[0], b[1]) for b in boxes)


def test_unigrad_both_is_dense_plus_global():
    pred, target = torch.randn(3, 5, 8), torch.randn(3, 5, 8)
    loss = {m: MODELS.build(dict(type='UniGradLoss', mode=m))(pred, target)
            for m in ('dense', 'global', 'both')}
    torch.testing.assert_close(loss['both'], loss['dense'] + loss['global'])


def test_sim_pixel_target():
    cfg = copy.deepcopy(TINY_SIM)
    cfg['head'].update(target='pixel', patch_size=8)
    model = MODELS.build(cfg)
    model.init_weights()
    x1, x2 = _inputs()
    samples = _samples(3)
    before = [p.clone() for p in model.momentum_branch.parameters()]
    loss = model.loss([x1, x2], samples)['loss']
    # the momentum branch is not used (nor updated)
    for b, p in zip(before, model.momentum_branch.parameters()):
        assert torch.equal(b, p)
    mask = torch.stack([torch.as_tensor(s.mask) for s in samples]).flatten(1)
    geometry = model.get_geometry(samples, x1.device)
    pred = model.head.pixel_pred(model.predict_view2(x1, mask.bool(),
                                                     geometry))
    p = x2.reshape(3, 3, 4, 8, 4, 8).permute(0, 2, 4, 3, 5, 1).reshape(
        3, 16, 192)
    target = (p - p.mean(-1, keepdim=True)) / (p.var(-1, keepdim=True) +
                                               1e-6)**.5
    torch.testing.assert_close(loss, ((pred - target)**2).mean())
    with pytest.raises(ValueError, match='patch_size'):
        MODELS.build(dict(type='SiameseDenseHead', target='pixel'))


# ------------------------------------------------------------------ iTPN
def test_itpn_without_pyramid_decodes_the_main_stage():
    cfg = tiny_pixel_cfg()
    cfg['neck'] = None
    cfg['decoder'].update(fpn_dim=64, num_levels=1)
    model = MODELS.build(cfg)
    model.init_weights()
    assert not model.with_neck
    img = torch.randn(2, 3, 32, 32)
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[:, 8:] = True
    loss = model.loss(img, samples_with(mask))['loss']
    f16 = model.backbone(img, mask)[2]
    from mmmim.models.utils import visible_first_order
    _, ids_restore, _ = visible_first_order(mask)
    pred = model.decoder((f16, ), ids_restore)
    torch.testing.assert_close(loss, model.head.loss(pred, img, mask))


def itpn_mfm_pixel_cfg():
    cfg = tiny_pixel_cfg()
    cfg['backbone']['mask_mode'] = 'stem_token'
    cfg.update(mfm_head=dict(type='iTPNMFMHead', fpn_dim=32,
                             target_dims=(64, 32, 16)),
               target_generator=dict(type='iTPNEMATeacher', momentum=0.5),
               mfm_weight=0.5)
    return cfg


def test_itpn_multi_stage_supervision_adds_the_level_losses():
    model = MODELS.build(itpn_mfm_pixel_cfg())
    model.init_weights()
    model.eval()  # no teacher update: the teacher is a copy of the student
    img = torch.randn(2, 3, 32, 32)
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[:, :10] = True
    losses = model.loss(img, samples_with(mask))
    levels = model.neck(model.backbone(img, mask))
    ids = torch.arange(16).expand(2, -1)
    pred = model.decoder(levels, ids)
    torch.testing.assert_close(losses['loss'],
                               model.head.loss(pred, img, mask))
    targets = model.target_generator(img)
    torch.testing.assert_close(
        losses['loss_mfm'],
        0.5 * model.mfm_head.loss(levels, targets[::-1], mask))
    # every level regresses the teacher's feature of the same stride
    t4, t8, t16 = targets
    assert t16.shape == (2, 16, 64) and t4.shape[-1] == 16
    bad = itpn_mfm_pixel_cfg()
    bad['backbone']['mask_mode'] = 'drop'
    with pytest.raises(ValueError, match='stem_token'):
        MODELS.build(bad)
