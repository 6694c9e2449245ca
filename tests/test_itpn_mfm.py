"""iTPN masked feature modeling: CLIP teacher (reference) and EMA teacher."""
import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

TINY_ARCH = dict(embed_dims=64, depths=[1, 1, 2], num_heads=2)
TEACHER_ARCH = dict(input_resolution=32, patch_size=8, width=64, layers=1,
                    heads=1, output_dim=24)


def clip_cfg(**teacher):
    return dict(
        type='iTPNCLIPPretrainer',
        early_layers=1,
        backbone=dict(type='iTPNBackbone', arch=TINY_ARCH, img_size=32,
                      patch_size=8, mask_mode='token', use_rel_pos_bias=True,
                      layer_scale_init_value=0.1, rescale_init=True,
                      pos_embed_init='trunc_normal'),
        neck=dict(type='iTPNPyramidNeck', in_channels=64, fpn_dim=32,
                  fpn_depth=1),
        head=dict(type='iTPNCLIPHead', embed_dim=64, fpn_dim=32,
                  target_dim=24, num_heads=2, grid_size=4),
        target_generator=dict(type='iTPNCLIPTeacher',
                              **(teacher or dict(arch=TEACHER_ARCH))))


def samples_with(mask):
    out = []
    for m in mask:
        s = DataSample()
        s.set_field(m.reshape(4, 4), 'mask')
        out.append(s)
    return out


def test_clip_loss_is_smooth_l1_of_main_and_aux_over_all_tokens():
    model = MODELS.build(clip_cfg())
    img = torch.randn(2, 3, 32, 32)
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[:, 5:11] = True
    loss = model.loss(img, samples_with(mask))['loss']

    f4, f8, f16, early = model.backbone.forward_tokens(
        img, mask, mask_mode='token', hidden_after=(1, ))
    main, aux = model.head(model.neck((f4, f8, f16)), early)
    target = model.target_generator(img)
    assert target.shape == (2, 16, 24)
    # LayerNorm without affine: zero mean, unit (biased) variance per token
    torch.testing.assert_close(target.mean(-1), torch.zeros(2, 16),
                               atol=1e-5, rtol=0)

    def smooth_l1(a, b):
        d = (a - b).abs()
        return torch.where(d < 1, 0.5 * d**2, d - 0.5).mean()

    expected = smooth_l1(main, target) + smooth_l1(aux, target)
    torch.testing.assert_close(loss, expected)
    # the teacher is frozen and outside the optimiser
    assert not any(p.requires_grad
                   for p in model.target_generator.parameters())


def test_clip_teacher_from_checkpoint_file(tmp_path):
    random_teacher = MODELS.build(
        dict(type='iTPNCLIPTeacher', arch=TEACHER_ARCH))
    path = tmp_path / 'clip.pt'
    torch.save({'visual.' + k: v
                for k, v in random_teacher.visual.state_dict().items()},
               path)
    teacher = MODELS.build(dict(type='iTPNCLIPTeacher', checkpoint=str(path)))
    assert teacher.arch == TEACHER_ARCH
    img = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(teacher(img), random_teacher(img))
    with pytest.raises(FileNotFoundError, match='CLIP teacher checkpoint'):
        MODELS.build(dict(type='iTPNCLIPTeacher',
                          checkpoint=str(tmp_path / 'missing.pt')))


def ema_cfg():
    return dict(
        type='iTPNMFMPretrainer',
        backbone=dict(type='iTPNBackbone', arch=TINY_ARCH, img_size=32,
                      patch_size=8, mask_mode='stem_token'),
        neck=dict(type='iTPNPyramidNeck', in_channels=64, fpn_dim=32,
                  fpn_depth=1),
        head=dict(type='iTPNMFMHead', fpn_dim=32, target_dims=(64, 32, 16)),
        target_generator=dict(type='iTPNEMATeacher', momentum=0.25))


def test_ema_mfm_loss_and_teacher_update():
    model = MODELS.build(ema_cfg())
    teacher = model.target_generator.ema.module
    # the teacher's parameters are not trained
    trained = {id(p) for p in model.parameters() if p.requires_grad}
    assert not any(id(p) in trained for p in teacher.parameters())
    img = torch.randn(2, 3, 32, 32)
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[0, :12] = True
    mask[1, 4:] = True
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                          lr=0.5)
    loss = model.loss(img, samples_with(mask))['loss']
    # first update copies the student
    torch.testing.assert_close(teacher.blocks[4].attn.qkv.weight,
                               model.backbone.blocks[4].attn.qkv.weight)

    # the loss: per level, squared error averaged over channels and the
    # patch's sub-tokens, then over masked patches; summed over levels
    t4, t8, t16 = model.target_generator(img)
    levels = model.neck(model.backbone.forward_tokens(img, mask))
    expected = 0.
    for lvl, tgt, lin in zip(levels, (t16, t8, t4), model.head.predictors):
        err = ((lin(lvl) - tgt.reshape(lin(lvl).shape))**2)
        err = err.reshape(2, 16, -1).mean(-1)
        expected = expected + err[mask].mean()
    torch.testing.assert_close(loss, expected)
    assert t16.shape == (2, 16, 64) and t8.shape == (2, 16, 2, 2, 32)
    assert t4.shape == (2, 16, 4, 4, 16)

    loss.backward()
    opt.step()
    before = teacher.blocks[4].attn.qkv.weight.detach().clone()
    student = model.backbone.blocks[4].attn.qkv.weight.detach().clone()
    assert not torch.allclose(before, student)
    model.loss(img, samples_with(mask))
    torch.testing.assert_close(teacher.blocks[4].attn.qkv.weight,
                               0.75 * before + 0.25 * student)


def test_mfm_configs_build_on_meta():
    cfg = Config.fromfile('configs/itpn/itpn-base_mfm-ema_800e.py')
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert model.backbone.mask_mode == 'stem_token'
    assert [m.out_features for m in model.head.predictors] == [512, 256, 128]
    cfg = Config.fromfile('configs/itpn/itpn-base_clip_800e.py')
    cfg.model.target_generator = dict(
        type='iTPNCLIPTeacher',
        arch=dict(input_resolution=224, patch_size=16, width=768, layers=12,
                  heads=12, output_dim=512))
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    # exact sums over official_keys/itpn_base_clip_b16.txt
    assert n(model.backbone) == 78_070_208
    assert n(model.neck) == 3_648_000
    assert n(model.head) == 7_020_080
    assert model.early_layers == 19  # reference: block int(0.75 * 24) from 0
    # reference dpr_cls: aux block j gets main block 18 + j's drop-path rate
    # (linspace(0, 0.1, 30)[6 + 18 + j]); its LayerNorms keep eps 1e-5
    for j, blk in enumerate(model.head.cls_pt_layers):
        assert blk.drop_path.drop_prob == pytest.approx(0.1 * (24 + j) / 29)
        assert blk.norm1.eps == blk.norm2.eps == 1e-5
    assert model.head.norm.eps == model.head.decoder_embed[0][0].eps == 1e-6


def test_clip_teacher_input_stats_must_match_the_data_preprocessor():
    # the teacher maps the student's normalised image back to [0, 1]
    cfg = clip_cfg()
    cfg['data_preprocessor'] = dict(
        type='SelfSupDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3)
    with pytest.raises(ValueError, match='input_mean/std'):
        MODELS.build(cfg)
    cfg['target_generator'].update(input_mean=[127.5] * 3,
                                   input_std=[127.5] * 3)
    MODELS.build(cfg)
    cfg['data_preprocessor'].update(mean=[123.675, 116.28, 103.53],
                                    std=[58.395, 57.12, 57.375])
    del cfg['target_generator']['input_mean'], \
        cfg['target_generator']['input_std']
    MODELS.build(cfg)  # ImageNet statistics are the teacher's default


def test_clip_teacher_reproduces_the_reference_input_scaling():
    """The reference hands its CLIP wrapper a [0, 1] image that it treats
    as [-1, 1]: CLIP sees (x + 1) / 2, normalised with CLIP's statistics."""
    captured = {}
    teacher = MODELS.build(dict(type='iTPNCLIPTeacher', arch=TEACHER_ARCH))
    teacher.visual.register_forward_pre_hook(
        lambda m, args: captured.update(x=args[0]))
    img01 = torch.rand(2, 3, 32, 32)
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    clip_mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(
        1, 3, 1, 1)
    clip_std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(
        1, 3, 1, 1)
    teacher((img01 * 255 - mean) / std)
    torch.testing.assert_close(captured['x'],
                               ((img01 + 1) / 2 - clip_mean) / clip_std,
                               rtol=1e-5, atol=1e-5)
    teacher.reference_input_scaling = False
    teacher((img01 * 255 - mean) / std)
    torch.testing.assert_close(captured['x'], (img01 - clip_mean) / clip_std,
                               rtol=1e-5, atol=1e-5)
