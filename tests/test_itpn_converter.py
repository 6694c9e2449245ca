"""tools/model_converters/itpn_to_mmmim.py on synthetic reference ckpts."""
import importlib.util
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

from .conftest import official_shapes

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
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
    return official_shapes(name[:-len('.txt')])


def test_base_pixel_names_and_shapes_match_official_keys():
    ref = official('itpn_base_pixel_dec512d8b.txt')
    model = conv.build_model(
        osp.join(ROOT, 'configs/itpn/itpn-base_pixel_800e.py'))
    fake = {k: torch.empty(s, device='meta') for k, s in ref.items()}
    out = conv.convert(fake, model, 'pixel')
    assert len(out) == len(ref) == len(model.state_dict())
    # the same table converts back to the reference names
    back = conv.KEYMAPS['pixel'].convert(out, to_mmmim=False)
    assert back.keys() == fake.keys()


def test_base_clip_names_and_shapes_match_official_keys():
    ref = official('itpn_base_clip_b16.txt')
    model = conv.build_model(
        osp.join(ROOT, 'configs/itpn/itpn-base_clip_800e.py'), variant='clip')
    fake = {k: torch.empty(s, device='meta') for k, s in ref.items()}
    out = conv.convert(fake, model, 'clip')
    assert len(out) == len(ref) - 1  # the shared relative_position_index
    assert not [k for k in model.state_dict() if k not in out
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
    out = torch.load(dst, weights_only=True)['state_dict']
    assert set(out) == set(state)
    for k in state:
        torch.testing.assert_close(out[k], state[k])


def test_wide_pyramid_fails_loudly_naming_keys():
    # a "released" checkpoint whose pyramid is twice as wide as the model's
    wide = to_reference(_tiny_demo_model(fpn_dim=128).state_dict(), 'pixel')
    with pytest.raises(ValueError) as err:
        conv.convert(wide, _tiny_demo_model(), 'pixel')
    msg = str(err.value)
    assert 'neck.align_dim_16tofpn.weight: checkpoint (128, ' in msg
    assert 'neck.fpn_modules.0.mlp.fc1.weight' in msg
    assert 'pyramid is 128 wide' in msg


def test_unknown_and_missing_keys_are_reported():
    model = _tiny_demo_model()
    state = to_reference(model.state_dict(), 'pixel')
    del state['blocks.0.mlp.fc1.weight']
    with pytest.raises(KeyError, match='something_new.weight'):
        conv.convert(dict(state, **{'something_new.weight': torch.zeros(1)}),
                     model, 'pixel')
    with pytest.raises(ValueError, match='backbone.blocks.0.mlp.fc1.weight'):
        conv.convert(state, model, 'pixel')
