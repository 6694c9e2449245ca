"""mmmim against the reference implementations, on stored reference outputs.

The fixtures in ``tests/data/reference/`` were made by running small variants
of the reference models (``tools/parity/make_fixtures.py``; how, and from
which commits: ``tests/data/reference/README.md``). Each test converts the
reference state dict with mmmim's converter, builds mmmim's model from the
method's config with tiny overrides, feeds it the same inputs and masks and
requires every stored tensor to agree within 1e-5, relative to the largest
magnitude of the reference tensor.
"""
import importlib.util
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
FIXTURES = osp.join(ROOT, 'tests', 'data', 'reference')
TOL = 1e-5


def load_fixture(name):
    fx = torch.load(osp.join(FIXTURES, f'{name}.pt'), map_location='cpu',
                    weights_only=True)
    fx['inputs'] = as_float32(fx['inputs'])
    return fx


def as_float32(state):
    """Fixtures store float16-exact tensors (perturbed parameters, rounded
    inputs) as float16; the reference ran in float32 with these values."""
    return {k: v.float() if torch.is_tensor(v) and v.is_floating_point()
            else v for k, v in state.items()}


def converter(name):
    spec = importlib.util.spec_from_file_location(
        name, osp.join(ROOT, 'tools', 'model_converters', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def config_model(path):
    return Config.fromfile(osp.join(ROOT, 'configs', path)).model


def rel_err(actual, expected):
    actual, expected = actual.float(), expected.float()
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return float((actual - expected).abs().max() /
                 expected.abs().max().clamp(min=1e-12))


def assert_close(actual, expected, what, tol=TOL):
    err = rel_err(actual, expected)
    assert err <= tol, (f'{what}: max |mmmim - reference| / max |reference| '
                        f'= {err:.2e} > {tol:.0e}')


def load_exactly(model, state, unused=()):
    """Load and check that every model tensor came from the reference
    (except ``unused`` ones, which the forward does not read)."""
    result = model.load_state_dict(state, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
    assert sorted(result.missing_keys) == sorted(unused), result.missing_keys
    return model.eval()


def samples_with_masks(mask, grid):
    samples = []
    for m in mask:
        s = DataSample()
        s.set_field(m.reshape(grid), 'mask')
        samples.append(s)
    return samples


def vit_arch(k):
    return dict(embed_dims=k['embed_dim'], num_layers=k['depth'],
                num_heads=k['num_heads'],
                feedforward_channels=int(k['embed_dim'] * k['mlp_ratio']))


# -------------------------------------------------------------------- MAE
def mae_keymap():
    from mmmim.converters import MAE_KEYMAP
    return MAE_KEYMAP


def build_mae(fx, config='mae/mae-vit-base_pixel_1600e.py', **head):
    k = fx['meta']['kwargs']
    cfg = config_model(config)
    grid = k['img_size'] // k['patch_size']
    cfg.backbone.update(arch=vit_arch(k), img_size=k['img_size'],
                        patch_size=k['patch_size'])
    cfg.neck.update(num_patches=grid * grid, patch_size=k['patch_size'],
                    embed_dim=k['embed_dim'],
                    decoder_embed_dim=k['decoder_embed_dim'],
                    decoder_depth=k['decoder_depth'],
                    decoder_num_heads=k['decoder_num_heads'],
                    mlp_ratio=k['mlp_ratio'])
    cfg.head.update(patch_size=k['patch_size'], **head)
    return cfg


@pytest.mark.parametrize('norm_pix', [True, False])
def test_mae_matches_reference(norm_pix):
    fx = load_fixture('mae')
    model = MODELS.build(build_mae(fx, norm_pix=norm_pix))
    load_exactly(model, mae_keymap().convert(as_float32(fx['state_dict'])))
    img, mask = fx['inputs']['img'], fx['inputs']['mask']
    ref = fx['outputs']
    with torch.no_grad():
        latent, _ = model.backbone(img, mask)
        assert_close(latent, ref['latent'], 'encoder output (cls + visible)')
        pred = model.predict_patches(img, mask)
        assert_close(pred, ref['pred'], 'predictions of all patches')
        loss = model.loss(img, samples_with_masks(mask, (4, 4)))['loss']
    expected = ref['loss_norm_pix'] if norm_pix else ref['loss']
    assert_close(loss, expected, f'loss (norm_pix={norm_pix})')


def test_vit_mean_pool_finetune_forward_matches_reference():
    """MAE's fine-tuning ViT (global pool: mean of the patch tokens,
    fc_norm, head), initialised from the pre-trained encoder."""
    fx = load_fixture('mae')
    k = fx['meta']['finetune_kwargs']
    cfg = config_model(
        'benchmarks/classification/mae_vit-base-p16_ft-100e_in1k.py')
    cfg.backbone.update(arch=vit_arch(k), img_size=k['img_size'],
                        patch_size=k['patch_size'], drop_path_rate=0.,
                        init_cfg=None)
    cfg.head.update(in_channels=k['embed_dim'], num_classes=k['num_classes'])
    model = MODELS.build(cfg)
    # the encoder as mmmim's converter gives it (decoder and final norm are
    # not part of the fine-tuning model), plus the new fc_norm and head
    state = {n: v for n, v in mae_keymap().convert(
        as_float32(fx['state_dict'])).items()
        if n.startswith('backbone.') and not n.startswith('backbone.ln1.')}
    for name, value in as_float32(fx['finetune_new']).items():
        part, rest = name.split('.', 1)
        state[{'fc_norm': 'backbone.ln2.', 'head': 'head.fc.'}[part] +
              rest] = value
    load_exactly(model, state)
    img = fx['inputs']['img']
    with torch.no_grad():
        pooled = model.extract_feat(img)
        assert_close(pooled[-1], fx['outputs']['finetune_pooled'],
                     'fc_norm(mean of patch tokens)')
        logits = model.head(pooled)
    assert_close(logits, fx['outputs']['finetune_logits'], 'logits')


# ----------------------------------------------------------------- SimMIM
def simmim_keymap():
    from mmmim.converters import SIMMIM_KEYMAP
    return SIMMIM_KEYMAP


def test_simmim_vit_matches_reference():
    fx = load_fixture('simmim')
    k = fx['meta']['kwargs']
    cfg = config_model('simmim/simmim-vit-base_pixel_800e.py')
    cfg.backbone.update(arch=vit_arch(k), img_size=k['img_size'],
                        patch_size=k['patch_size'], drop_path_rate=0.)
    cfg.neck.update(in_channels=k['embed_dim'],
                    encoder_stride=fx['meta']['encoder_stride'])
    cfg.head.update(patch_size=k['patch_size'])
    model = MODELS.build(cfg)
    load_exactly(model,
                 simmim_keymap().convert(as_float32(fx['state_dict'])))
    img, mask = fx['inputs']['img'], fx['inputs']['mask']
    ref = fx['outputs']
    with torch.no_grad():
        tokens = model.backbone(img, mask)[-1]
        assert_close(tokens[:, 1:].transpose(1, 2),
                     ref['encoder'].flatten(2), 'encoder patch tokens')
        pred = model.predict_pixels(img, mask)
        assert_close(pred, ref['pred'], 'reconstructed image')
        loss = model.loss(img, samples_with_masks(mask, (4, 4)))['loss']
    assert_close(loss, ref['loss'], 'loss')


def test_simmim_finetune_forward_matches_reference():
    """SimMIM's fine-tuning ViT: a relative position bias table per block,
    mean pooling, fc_norm, head."""
    fx = load_fixture('simmim')
    k = fx['meta']['finetune_kwargs']
    cfg = config_model(
        'benchmarks/classification/simmim_vit-base-p16_ft-100e_in1k.py')
    cfg.backbone.update(arch=vit_arch(k), img_size=k['img_size'],
                        patch_size=k['patch_size'], drop_path_rate=0.,
                        init_cfg=None)
    cfg.head.update(in_channels=k['embed_dim'], num_classes=k['num_classes'])
    model = MODELS.build(cfg)
    encoder, state = {}, {}
    for name, value in as_float32(fx['finetune_state_dict']).items():
        if name.startswith('fc_norm.'):
            state['backbone.ln2.' + name[len('fc_norm.'):]] = value
        elif name.startswith('head.'):
            state['head.fc.' + name[len('head.'):]] = value
        else:  # the pre-training layout names the encoder encoder.*
            encoder['encoder.' + name] = value
    state.update(simmim_keymap().convert(encoder))
    # the backbone keeps the pre-training mask token, unused without a mask
    load_exactly(model, state, unused=['backbone.mask_token'])
    img = fx['inputs']['img']
    with torch.no_grad():
        pooled = model.extract_feat(img)
        assert_close(pooled[-1], fx['outputs']['finetune_pooled'],
                     'fc_norm(mean of patch tokens)')
        logits = model.head(pooled)
    assert_close(logits, fx['outputs']['finetune_logits'], 'logits')


# -------------------------------------------------------------------- HPM
def build_hpm(fx, loss='HPMRelativeLoss'):
    k = fx['meta']['kwargs']
    cfg = build_mae(fx, config='hpm/hpm-vit-base_pixel_800e.py')
    cfg.loss_predictor.update(
        embed_dims=k['decoder_embed_dim'], depth=k['decoder_depth'],
        num_heads=k['decoder_num_heads'], mlp_ratio=k['mlp_ratio'],
        out_channels=k['patch_size']**2 * 3, loss=dict(type=loss))
    cfg.target_generator.update(mask_ratio=fx['meta']['mask_ratio'])
    model = MODELS.build(cfg)
    conv = converter('hpm_to_mmmim')
    ckpt = conv.convert_hpm(
        dict(state_dict=as_float32(fx['state_dict']),
             ema_state_dict=as_float32(fx['ema_state_dict'])), model)
    return load_exactly(model, ckpt['state_dict'])


def split_visible_masked(x, mask):
    """(B, L, ...) raster order -> (B, L, ...) [visible..., masked...], as
    the reference's HPM decoder orders its tokens."""
    B = x.shape[0]
    return torch.cat([x[~mask].reshape(B, -1, *x.shape[2:]),
                      x[mask].reshape(B, -1, *x.shape[2:])], dim=1)


def test_hpm_teacher_and_easy_to_hard_mask_match_reference():
    fx = load_fixture('hpm')
    model = build_hpm(fx)
    meta, ref = fx['meta'], fx['outputs']
    img = fx['inputs']['img']
    with torch.no_grad():
        scores, feats = model.target_generator(img)
    assert_close(scores, ref['teacher_scores'], "teacher's loss map")
    assert_close(feats, ref['teacher_features'][:, 1:],
                 'teacher patch features')
    assert model.target_generator.num_hard(
        16, meta['epoch'], meta['total_epoch']) == meta['num_hard'] == 3
    mask = model.target_generator.generate_mask(
        ref['teacher_scores'], meta['epoch'], meta['total_epoch'],
        noise=fx['inputs']['noise'])
    assert torch.equal(mask, ref['mask'])


@pytest.mark.parametrize('loss,key', [('HPMRelativeLoss', 'relative'),
                                      ('HPMStandardizedMSELoss', 'mse')])
def test_hpm_student_and_losses_match_reference(loss, key):
    fx = load_fixture('hpm')
    model = build_hpm(fx, loss)
    ref = fx['outputs']
    img, mask = fx['inputs']['img'], ref['mask']
    with torch.no_grad():
        latent, _ = model.backbone(img, mask)
        assert_close(latent, ref['latent'], 'encoder output')
        pred, pred_losses = model.predict(img, mask)
        assert_close(split_visible_masked(pred, mask), ref['pix_pred'],
                     'reconstruction')
        assert_close(split_visible_masked(pred_losses, mask),
                     ref['loss_pred'], 'predicted losses')
        losses = model.loss(img, samples_with_masks(mask, (4, 4)))
    assert_close(losses['loss_rec'], ref['loss'], 'reconstruction loss')
    assert_close(losses['loss_pred'], ref[f'loss_pred_{key}'],
                 f'loss-prediction loss ({key})')


# -------------------------------------------------------------------- SIM
def build_sim(fx):
    k, args = fx['meta']['kwargs'], fx['meta']['args']
    grid = k['img_size'] // k['patch_size']
    cfg = config_model('sim/sim-vit-base_1600e.py')
    cfg.backbone.update(arch=vit_arch(k), img_size=k['img_size'],
                        patch_size=k['patch_size'])
    cfg.head.update(in_channels=k['embed_dim'],
                    embed_dims=args['decoder_embed_dim'], grid_size=grid,
                    num_heads=k['decoder_num_heads'],
                    mlp_ratio=k['mlp_ratio'],
                    projector_depth=args['projector_depth'],
                    predictor_depth=args['predictor_depth'])
    model = MODELS.build(cfg)
    conv = converter('sim_to_mmmim')
    load_exactly(model, conv.convert_sim(as_float32(fx['state_dict']),
                                         model))
    return model.train()  # token BatchNorm with batch statistics


def sim_samples(fx):
    inputs = fx['inputs']
    samples = []
    for i in range(inputs['mask'].shape[0]):
        s = DataSample()
        s.set_field(inputs['mask'][i].reshape(4, 4), 'mask')
        s.set_field(inputs['crop_boxes'][i], 'crop_boxes')
        s.set_field(inputs['flips'][i], 'flips')
        s.set_field(fx['meta']['img_width'], 'img_width',
                    field_type='metainfo')
        samples.append(s)
    return samples


def test_sim_relative_geometry_matches_reference():
    fx = load_fixture('sim')
    model = build_sim(fx)
    geometry = model.get_geometry(sim_samples(fx), torch.device('cpu'))
    for ours, ref, name in zip(geometry, fx['inputs']['rel_pos_21'],
                               geometry._fields):
        if name == 'relative_flip':
            assert torch.equal(ours, ref)
        else:
            assert_close(ours, ref, name)


def test_sim_without_momentum_update_matches_reference():
    fx = load_fixture('sim')
    model = build_sim(fx)
    x1, x2 = fx['inputs']['x1'], fx['inputs']['x2']
    mask, ref = fx['inputs']['mask'], fx['outputs']
    with torch.no_grad():
        geometry = model.get_geometry(sim_samples(fx), x1.device)
        pred = model.predict_view2(x1, mask, geometry)
        assert_close(pred, ref['pred_no_update'], 'predictions of view 2')
        target = model.target_view2(x2)
        assert_close(target, ref['target_no_update'], 'momentum target')
        loss = model.head.loss(pred, target)
    assert_close(loss, ref['loss_no_update'], 'UniGrad loss')


def test_sim_with_momentum_update_matches_reference():
    """``SIMPretrainer.loss``: the momentum update comes before the target
    pass, as in the reference's ``forward_sim(update_mm=True)``."""
    fx = load_fixture('sim')
    model = build_sim(fx)
    model.momentum = fx['meta']['momentum']
    ref = fx['outputs']
    inputs = [fx['inputs']['x1'], fx['inputs']['x2']]
    with torch.no_grad():
        loss = model.loss(inputs, sim_samples(fx))['loss']
    assert_close(loss, ref['loss_update'], 'UniGrad loss after the update')
    conv = converter('sim_to_mmmim')
    ours = model.state_dict()
    for name, value in ref['momentum_state'].items():
        assert_close(ours[conv.SIM_KEYMAP.map_key(name)], value,
                     f'{name} after the update')


# ------------------------------------------------------------------- iTPN
def itpn_arch(k):
    return dict(embed_dims=k['embed_dim'],
                depths=[k.get('mlp_depth', k.get('mlp_depth1')),
                        k.get('mlp_depth', k.get('mlp_depth2')), k['depth']],
                num_heads=k['num_heads'])


def build_itpn_pixel(fx, **backbone):
    k = fx['meta']['kwargs']
    cfg = config_model('itpn/itpn-base_pixel_800e.py')
    cfg.backbone.update(arch=itpn_arch(k), img_size=k['img_size'],
                        patch_size=k['patch_size'], **backbone)
    cfg.neck.update(in_channels=k['embed_dim'], fpn_dim=k['fpn_dim'],
                    fpn_depth=k['fpn_depth'])
    cfg.decoder.update(num_patches=(k['img_size'] // k['patch_size'])**2,
                       patch_size=k['patch_size'], fpn_dim=k['fpn_dim'],
                       embed_dim=k['decoder_embed_dim'],
                       depth=k['decoder_depth'],
                       num_heads=k['decoder_num_heads'])
    cfg.head.update(patch_size=k['patch_size'])
    model = MODELS.build(cfg)
    conv = converter('itpn_to_mmmim')
    state = conv.convert(as_float32(fx['state_dict']), model, 'pixel')
    return load_exactly(model, state)


def test_itpn_pixel_matches_reference():
    fx = load_fixture('itpn_pixel')
    model = build_itpn_pixel(fx)
    img, mask = fx['inputs']['img'], fx['inputs']['mask']
    ref = fx['outputs']
    with torch.no_grad():
        feats = model.backbone(img, mask)
        assert_close(feats[2], ref['main'], 'main stage (visible tokens)')
        levels = model.neck(feats)
        for lvl, r, name in zip(levels, ref['pyramid'], ('16', '8', '4')):
            assert_close(lvl, r, f'pyramid level stride {name}')
        pred = model.predict_pixels(img, mask)
        assert_close(pred, ref['pred'], 'predictions of all patches')
        assert_close(model.head.construct_target(img), ref['target'],
                     'normalised pixel targets')
        loss = model.loss(img, samples_with_masks(mask, (4, 4)))['loss']
    assert_close(loss, ref['loss'], 'loss')


def test_itpn_pixel_stored_pos_table_switch_departs_from_reference():
    # reference_pos_interp=False adds the stored table in masked
    # pre-training: a documented deviation, visible in every output
    fx = load_fixture('itpn_pixel')
    model = build_itpn_pixel(fx, reference_pos_interp=False)
    with torch.no_grad():
        feats = model.backbone(fx['inputs']['img'], fx['inputs']['mask'])
    assert rel_err(feats[2], fx['outputs']['main']) > 1e-3


def test_itpn_hivit_finetune_forward_matches_reference():
    """Fine-tuning forward (relative position bias, all tokens, so the
    stored position table): mean pool + fc_norm + linear head."""
    fx = load_fixture('itpn_hivit_finetune')
    k = fx['meta']['kwargs']
    cfg = config_model(
        'benchmarks/classification/itpn_hivit-base-p16_ft-100e_in1k.py')
    cfg.backbone.update(arch=itpn_arch(k), img_size=k['img_size'],
                        patch_size=k['patch_size'], drop_path_rate=0.,
                        init_cfg=None)
    cfg.neck.update(in_channels=k['embed_dim'])
    cfg.head.update(in_channels=k['embed_dim'], num_classes=k['num_classes'])
    model = MODELS.build(cfg)
    conv = converter('itpn_to_mmmim')
    weights = as_float32(fx['state_dict'])
    state = conv.KEYMAPS['pixel'].convert(
        {k: v for k, v in weights.items()
         if not k.startswith(('fc_norm.', 'head.'))})
    for key, value in weights.items():
        if key.startswith('fc_norm.'):
            state['neck.' + key] = value
        elif key.startswith('head.'):
            state['head.fc.' + key[len('head.'):]] = value
    load_exactly(model, state)
    img = fx['inputs']['img']
    with torch.no_grad():
        feats = model.backbone(img)
        tokens = feats[-1].flatten(2).transpose(1, 2)
        assert_close(tokens, fx['outputs']['main'], 'main-stage tokens')
        pooled = model.neck(feats)[0]
        assert_close(pooled, fx['outputs']['pooled'], 'fc_norm(mean pool)')
        logits = model.head(model.neck(feats))
    assert_close(logits, fx['outputs']['logits'], 'logits')


def build_itpn_clip(fx, tmp_path, **teacher):
    k = fx['meta']['kwargs']
    arch = itpn_arch(k)
    grid = k['img_size'] // k['patch_size']
    # the reference's tiny CLIP, saved in OpenAI's layout
    clip_file = str(tmp_path / 'tiny_clip.pth')
    torch.save({'visual.' + n: v.float()
                for n, v in fx['teacher_state_dict'].items()}, clip_file)
    cfg = config_model('itpn/itpn-base_clip_800e.py')
    cfg.early_layers = int(0.75 * k['depth']) + 1
    cfg.backbone.update(arch=arch, img_size=k['img_size'],
                        patch_size=k['patch_size'], mlp_ratio=k['mlp_ratio'],
                        layer_scale_init_value=k['init_values'])
    cfg.neck.update(in_channels=k['embed_dim'], fpn_dim=k['fpn_dim'],
                    fpn_depth=k['fpn_depth'], mlp_ratio=k['mlp_ratio'])
    cfg.head.update(embed_dim=k['embed_dim'], fpn_dim=k['fpn_dim'],
                    target_dim=k['teacher_dim'], num_heads=k['num_heads'],
                    mlp_ratio=k['mlp_ratio'], grid_size=grid,
                    layer_scale_init_value=k['init_values'])
    # the fixture's student input is ImageNet-normalised (the config's
    # recipe uses the reference's mean = std = 0.5)
    cfg.target_generator.update(
        checkpoint=clip_file,
        input_mean=[255. * m for m in fx['meta']['input_mean']],
        input_std=[255. * s for s in fx['meta']['input_std']], **teacher)
    model = MODELS.build(cfg)
    conv = converter('itpn_to_mmmim')
    state = conv.convert(as_float32(fx['state_dict']), model, 'clip')
    result = model.load_state_dict(state, strict=False)
    assert not result.unexpected_keys
    # the teacher is loaded from its own file, not from the student's
    assert all(n.startswith('target_generator.')
               for n in result.missing_keys)
    return model.eval()


def test_itpn_clip_matches_reference(tmp_path):
    fx = load_fixture('itpn_clip')
    model = build_itpn_clip(fx, tmp_path)
    img, mask = fx['inputs']['img'], fx['inputs']['mask']
    ref = fx['outputs']
    with torch.no_grad():
        f4, f8, f16, early = model.backbone.forward_tokens(
            img, mask, mask_mode='token', hidden_after=(model.early_layers, ))
        assert_close(f16, ref['main'], 'main stage')
        levels = model.neck((f4, f8, f16))
        for lvl, r, name in zip(levels, ref['pyramid'], ('16', '8', '4')):
            assert_close(lvl.flatten(2, 3), r.flatten(2, 3),
                         f'pyramid level stride {name}')
        main, aux = model.head(levels, early)
        assert_close(main, ref['main_pred'], 'main prediction')
        assert_close(aux, ref['aux_pred'], 'auxiliary prediction')
        target = model.target_generator(img)
        assert_close(target, ref['target'], 'CLIP target')
        loss = model.loss(img, samples_with_masks(mask, (4, 4)))['loss']
    assert_close(loss, ref['loss'], 'loss')


def test_itpn_clip_teacher_switch_departs_from_reference(tmp_path):
    # reference_input_scaling=False gives CLIP the image itself instead of
    # the reference's (x + 1) / 2
    fx = load_fixture('itpn_clip')
    model = build_itpn_clip(fx, tmp_path, reference_input_scaling=False)
    with torch.no_grad():
        target = model.target_generator(fx['inputs']['img'])
    assert rel_err(target, fx['outputs']['target']) > 1e-2
