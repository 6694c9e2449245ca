"""tools/model_converters/itpn_to_mmmim.py on synthetic reference ckpts."""
import importlib.util
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
KEYS = '/work/shared/spec/official_keys'
spec = importlib.util.spec_from_file_location(
    'itpn_to_mmmim',
    osp.join(ROOT, 'tools', 'model_converters', 'itpn_to_mmmim.py'))
conv = importlib.util.module_from_spec(spec)
spec.loader.exec_module(conv)


def to_reference(state, variant):
    """mmmim names -> reference names (inverse of the converter's map)."""
    out = {}
    for k, v in state.items():
        if k.startswith('target_generator.'):
            continue
        if k == 'backbone.pos_embed':
            out['absolute_pos_embed'] = v
        elif k in ('decoder.mask_token', 'backbone.mask_token'):
            out['mask_token'] = v
        else:
            out[k.split('.', 1)[1]] = v
    return out


def official(name):
    path = osp.join(KEYS, name)
    if not osp.isfile(path):
        pytest.skip('official key lists not available')
    shapes = {}
    for line in open(path):
        k, s = line.rstrip('\n').split('\t')
        shapes[k] = tuple(eval(s))
    return shapes


def test_base_pixel_names_and_shapes_match_official_keys():
    ref = official('itpn_base_pixel_dec512d8b.txt')
    shapes = conv.model_shapes(
        osp.join(ROOT, 'configs/itpn/itpn-base_pixel_800e.py'))
    fake = {k: torch.empty(s, device='meta') for k, s in ref.items()}
    out = conv.convert(fake, shapes, 'pixel')
    assert len(out) == len(ref) == len(shapes)


def test_base_clip_names_and_shapes_match_official_keys():
    ref = official('itpn_base_clip_b16.txt')
    shapes = conv.model_shapes(
        osp.join(ROOT, 'configs/itpn/itpn-base_clip_800e.py'), variant='clip')
    fake = {k: torch.empty(s, device='meta') for k, s in ref.items()}
    out = conv.convert(fake, shapes, 'clip')
    assert len(out) == len(ref) - 1  # the shared relative_position_index
    assert not [k for k in shapes if k not in out
                and not k.startswith('target_generator.')]


def _tiny_demo_model(**neck):
    cfg = Config.fromfile(osp.join(ROOT, 'configs/demo/itpn_fashion-mnist.py'))
    cfg.model.neck.update(neck)
    cfg.model.decoder.fpn_dim = cfg.model.neck.fpn_dim
    return MODELS.build(cfg.model)


def test_tiny_round_trip_through_main(tmp_path):
    model = _tiny_demo_model()
    state = model.state_dict()
    ref = to_reference(state, 'pixel')
    src = tmp_path / 'ref.pth'
    dst = tmp_path / 'mmmim.pth'
    torch.save({'model': ref}, src)
    conv.main([str(src), str(dst), '--config',
               osp.join(ROOT, 'configs/demo/itpn_fashion-mnist.py')])
    out = torch.load(dst, weights_only=False)['state_dict']
    assert set(out) == set(state)
    for k in state:
        torch.testing.assert_close(out[k], state[k])


def test_wide_pyramid_fails_loudly_naming_keys():
    # a "released" checkpoint whose pyramid is twice as wide as the model's
    wide = to_reference(_tiny_demo_model(fpn_dim=128).state_dict(), 'pixel')
    shapes = {k: v.shape for k, v in _tiny_demo_model().state_dict().items()}
    with pytest.raises(conv.ConversionError) as err:
        conv.convert(wide, shapes, 'pixel')
    msg = str(err.value)
    assert 'align_dim_16tofpn.weight -> neck.align_dim_16tofpn.weight' in msg
    assert 'fpn_modules.0.mlp.fc1.weight' in msg
    assert 'pyramid is 128 wide' in msg


def test_unknown_and_missing_keys_are_reported():
    state = to_reference(_tiny_demo_model().state_dict(), 'pixel')
    shapes = {k: v.shape for k, v in _tiny_demo_model().state_dict().items()}
    state['something_new.weight'] = torch.zeros(1)
    del state['blocks.0.mlp.fc1.weight']
    with pytest.raises(conv.ConversionError) as err:
        conv.convert(state, shapes, 'pixel')
    assert 'something_new.weight' in str(err.value)
    assert 'backbone.blocks.0.mlp.fc1.weight' in str(err.value)
