"""Convert a reference HPM checkpoint (student + EMA teacher) to mmmim.

    python tools/model_converters/hpm_to_mmmim.py SRC.pth DST.pth \
        [--config configs/hpm/hpm-vit-base_pixel_800e.py]

The reference checkpoint holds ``state_dict`` (keys prefixed ``module.``) and
``ema_state_dict`` (same layout, see ``official_keys/hpm_*``). Both load: the
student into ``backbone.`` / ``neck.`` / ``loss_predictor.`` and the teacher
into ``target_generator.teacher.{backbone,neck,loss_predictor}.``. Every
source key must map, and with ``--config`` every model key must be produced
with the model's shape; anything else stops the conversion.
"""
import argparse
import os.path as osp
import re
import sys
from collections import OrderedDict
from typing import Dict, Optional

import torch

# ViT block: reference (timm) names -> mmpretrain names
_BLOCK = [
    (r'norm1\.', 'ln1.'),
    (r'norm2\.', 'ln2.'),
    (r'attn\.qkv\.', 'attn.qkv.'),
    (r'attn\.proj\.', 'attn.proj.'),
    (r'mlp\.fc1\.', 'ffn.layers.0.0.'),
    (r'mlp\.fc2\.', 'ffn.layers.1.'),
]

# (reference pattern, mmmim part, mmmim prefix, is_block); first match wins
_RULES = [
    (r'cls_token$', 'backbone', 'cls_token', False),
    (r'pos_embed$', 'backbone', 'pos_embed', False),
    (r'patch_embed\.proj\.', 'backbone', 'patch_embed.projection.', False),
    (r'blocks\.(\d+)\.', 'backbone', 'layers.{}.', True),
    (r'norm\.', 'backbone', 'ln1.', False),
    (r'mask_token$', 'neck', 'mask_token', False),
    (r'decoder_pos_embed$', 'neck', 'decoder_pos_embed', False),
    (r'decoder_embed\.', 'neck', 'decoder_embed.', False),
    (r'decoder_blocks_losspred\.(\d+)\.', 'loss_predictor', 'blocks.{}.',
     True),
    (r'decoder_norm_losspred\.', 'loss_predictor', 'norm.', False),
    (r'decoder_pred_losspred\.', 'loss_predictor', 'pred.', False),
    (r'decoder_blocks\.(\d+)\.', 'neck', 'decoder_blocks.{}.', True),
    (r'decoder_norm\.', 'neck', 'ln1.', False),
    (r'decoder_pred\.', 'neck', 'decoder_pred.', False),
]


def map_key(key: str) -> Optional[str]:
    """Reference key (without ``module.``) -> mmmim student key, or None."""
    for pattern, part, prefix, is_block in _RULES:
        m = re.match(pattern, key)
        if not m:
            continue
        rest = key[m.end():]
        if is_block:
            for bp, bn in _BLOCK:
                bm = re.match(bp, rest)
                if bm:
                    return (f'{part}.{prefix.format(m.group(1))}{bn}'
                            f'{rest[bm.end():]}')
            return None
        return f'{part}.{prefix}{rest}'
    return None


def _strip(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    return OrderedDict((k[len('module.'):] if k.startswith('module.') else k,
                        v) for k, v in state.items())


def convert_state(state: Dict[str, torch.Tensor],
                  prefix: str = '') -> 'OrderedDict[str, torch.Tensor]':
    """Map every key of a reference state dict; raise on any unmapped key."""
    out, unmapped = OrderedDict(), []
    for key, value in _strip(state).items():
        new = map_key(key)
        if new is None:
            unmapped.append(key)
        else:
            out[prefix + new] = value
    if unmapped:
        raise KeyError(f'{len(unmapped)} reference keys have no mmmim '
                       f'counterpart: {unmapped[:20]}')
    return out


def convert_hpm(ckpt: dict, model: Optional[torch.nn.Module] = None,
                allow_missing_ema: bool = False) -> dict:
    """Reference HPM checkpoint dict -> mmmim checkpoint dict.

    Args:
        ckpt: the loaded reference checkpoint (``state_dict`` or ``model``,
            plus ``ema_state_dict``).
        model: an ``HPMPretrainer`` (meta device is fine) to check that every
            model key is produced with the right shape and nothing else.
        allow_missing_ema: without ``ema_state_dict``, initialise the teacher
            from the student (as training does) instead of failing.
    """
    student = ckpt.get('state_dict', ckpt.get('model'))
    if student is None:
        raise KeyError('no state_dict / model in the checkpoint, keys: '
                       f'{list(ckpt)}')
    out = convert_state(student)
    ema = ckpt.get('ema_state_dict')
    if ema is None:
        if not allow_missing_ema:
            raise KeyError('no ema_state_dict in the checkpoint (pass '
                           'allow_missing_ema to copy the student)')
        ema = student
    teacher = convert_state(ema, 'target_generator.teacher.')
    if set(k[len('target_generator.teacher.'):] for k in teacher) != set(out):
        raise KeyError('state_dict and ema_state_dict hold different keys')
    out.update(teacher)
    if model is not None:
        check_against_model(out, model)
    return dict(state_dict=out,
                meta=dict(converted_from='HPM reference checkpoint',
                          epoch=ckpt.get('epoch')))


def check_against_model(state: Dict[str, torch.Tensor],
                        model: torch.nn.Module) -> None:
    """Raise unless ``state`` has exactly the model's keys and shapes."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [(k, tuple(v.shape), expected[k]) for k, v in state.items()
             if k in expected and tuple(v.shape) != expected[k]]
    if missing or unexpected or wrong:
        raise ValueError(
            f'converted checkpoint does not fit the model: missing '
            f'{missing[:10]} ({len(missing)}), unexpected {unexpected[:10]} '
            f'({len(unexpected)}), shape mismatches {wrong[:10]} '
            f'({len(wrong)})')


def build_model(config: str) -> torch.nn.Module:
    import mmmim  # noqa: F401  (registers components)
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(config)
    with torch.device('meta'):
        return MODELS.build(cfg.model)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='reference HPM checkpoint')
    parser.add_argument('dst', help='output mmmim checkpoint')
    parser.add_argument('--config', help='mmmim HPM config to check keys and '
                        'shapes against (recommended)')
    parser.add_argument('--allow-missing-ema', action='store_true',
                        help='copy the student into the teacher when the '
                        'checkpoint has no ema_state_dict')
    args = parser.parse_args(argv)
    ckpt = torch.load(args.src, map_location='cpu', weights_only=False)
    model = build_model(args.config) if args.config else None
    out = convert_hpm(ckpt, model, args.allow_missing_ema)
    torch.save(out, args.dst)
    n = len(out['state_dict'])
    print(f'converted {n // 2} student + {n // 2} teacher tensors -> '
          f'{args.dst}' + ('' if model is None else ' (checked against '
                           f'{args.config})'))


if __name__ == '__main__':
    sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..',
                                            '..')))
    main()
