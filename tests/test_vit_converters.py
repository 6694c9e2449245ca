"""MAE / SimMIM converters: every reference key maps, both directions, and the
converted weights reproduce an independent implementation's outputs (timm's
ViT has MAE's encoder layout, timm's BEiT SimMIM's)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch

from mmmim.converters import (MAE_KEYMAP, SIMMIM_KEYMAP, check_against_model)
from mmpretrain.registry import MODELS

from .conftest import official_shapes

ROOT = Path(__file__).resolve().parents[1]
TINY_ARCH = dict(embed_dims=32, num_layers=2, num_heads=2,
                 feedforward_channels=128)


def official_keys(name):
    return list(official_shapes(name))


def block_pattern(key):
    return re.sub(r'blocks\.\d+\.', 'blocks.N.', key)


@pytest.mark.parametrize('keymap,name', [
    (MAE_KEYMAP, 'mae_vit_base_patch16_full'),
    (SIMMIM_KEYMAP, 'simmim_vit_base_patch16'),
])
def test_every_reference_key_maps_and_round_trips(keymap, name):
    keys = official_keys(name)
    sd = {k: torch.zeros(1) for k in keys}
    converted = keymap.convert(sd)
    assert len(converted) == len(keys)
    assert keymap.convert(converted, to_mmmim=False).keys() == sd.keys()
    with pytest.raises(KeyError, match='fc_norm'):
        keymap.convert({**sd, 'fc_norm.weight': torch.zeros(1)})


def test_mae_base_reference_layout_fits_the_base_model():
    from mmengine.config import Config
    cfg = Config.fromfile(str(ROOT / 'configs/mae/mae-vit-base_pixel_1600e.py'))
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    shapes = {key: torch.empty(shape, device='meta') for key, shape in
              official_shapes('mae_vit_base_patch16_full').items()}
    assert check_against_model(MAE_KEYMAP.convert(shapes), model) == []
    encoder_only = {k: v for k, v in shapes.items()
                    if not k.startswith(('decoder', 'mask_token'))}
    missing = check_against_model(MAE_KEYMAP.convert(encoder_only), model,
                                  allow_missing=('neck.', ))
    assert missing and all(k.startswith('neck.') for k in missing)
    with pytest.raises(ValueError, match='missing'):
        check_against_model(MAE_KEYMAP.convert(encoder_only), model)


def test_mae_encoder_reproduces_timm_vit():
    ref = timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2,
        mlp_ratio=4, qkv_bias=True, num_classes=0, global_pool='')
    for p in ref.parameters():  # non-trivial values everywhere
        torch.nn.init.normal_(p, std=0.2)
    ref.eval()
    sd = {k: v for k, v in ref.state_dict().items()}
    ours = MODELS.build(dict(type='MaskedViT', arch=TINY_ARCH, img_size=32,
                             patch_size=8, out_type='raw'))
    ours.load_state_dict(
        {k[len('backbone.'):]: v for k, v in MAE_KEYMAP.convert(sd).items()})
    ours.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = ref.forward_features(x)
        got = ours(x)[-1]
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    # masked encoding equals the reference run on the visible tokens
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[:, ::3] = True
    with torch.no_grad():
        latent, _ = ours(x, mask)
        tokens = ref.patch_embed(x) + ref.pos_embed[:, 1:]
        tokens = tokens[~mask].view(2, -1, 32)
        cls = (ref.cls_token + ref.pos_embed[:, :1]).expand(2, -1, -1)
        expected = ref.norm(ref.blocks(torch.cat([cls, tokens], 1)))
    torch.testing.assert_close(latent, expected, rtol=1e-4, atol=1e-5)
    # and back to the reference layout, identical tensors
    back = MAE_KEYMAP.convert(
        {'backbone.' + k: v for k, v in ours.state_dict().items()},
        to_mmmim=False)
    for k, v in sd.items():
        torch.testing.assert_close(back[k], v)


def test_simmim_encoder_reproduces_timm_beit():
    ref = timm.models.beit.Beit(
        img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2,
        mlp_ratio=4, qkv_bias=True, use_abs_pos_emb=False,
        use_rel_pos_bias=False, use_shared_rel_pos_bias=True,
        init_values=0.1, num_classes=0, global_pool='')
    for name, p in ref.named_parameters():
        torch.nn.init.normal_(p, std=0.2)
    ref.eval()
    sd = {'encoder.' + k: v for k, v in ref.state_dict().items()
          if not k.startswith('head')}
    sd['encoder.mask_token'] = torch.randn(1, 1, 32)
    # timm keeps the index as a non-persistent buffer; the reference saves it
    sd['encoder.rel_pos_bias.relative_position_index'] = \
        ref.rel_pos_bias.relative_position_index
    ours = MODELS.build(dict(type='SimMIMViT', arch=TINY_ARCH, img_size=32,
                             patch_size=8, out_type='raw',
                             drop_path_rate=0.))
    assert torch.equal(ours.rel_pos_bias.relative_position_index,
                       ref.rel_pos_bias.relative_position_index)
    converted = SIMMIM_KEYMAP.convert(sd)
    ours.load_state_dict(
        {k[len('backbone.'):]: v for k, v in converted.items()}, strict=True)
    ours.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = ref.forward_features(x)
        got = ours(x, None)[-1]
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_converter_scripts_round_trip(tmp_path):
    ref = timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2,
        num_classes=0, global_pool='')
    src = tmp_path / 'mae_encoder.pth'
    torch.save({'model': ref.state_dict(), 'args': {'note': 'pickled'}}, src)
    dst = tmp_path / 'mmmim.pth'
    back = tmp_path / 'back.pth'
    for cmd in (['vit_to_mmmim.py', 'mae', str(src), str(dst)],
                ['mmmim_to_vit.py', 'mae', str(dst), str(back)]):
        proc = subprocess.run(
            [sys.executable, str(ROOT / 'tools/model_converters' / cmd[0]),
             *cmd[1:]], capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr[-2000:]
    restored = torch.load(back)['model']
    assert restored.keys() == ref.state_dict().keys()
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(restored[k], v)
