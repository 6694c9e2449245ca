"""Convert a reference HPM checkpoint (student + EMA teacher) to mmmim.

    python tools/model_converters/hpm_to_mmmim.py SRC.pth DST.pth \
        [--config configs/hpm/hpm-vit-base_pixel_800e.py] [--trust-checkpoint]

The reference checkpoint holds ``state_dict`` (keys prefixed ``module.``) and
``ema_state_dict`` (same layout, see ``tests/data/official_keys/hpm_*``).
Both load, through one key map (``HPM_KEYMAP``: MAE's names plus the loss
predictor): the student into ``backbone.`` / ``neck.`` / ``loss_predictor.``
and the teacher into ``target_generator.teacher.{backbone,neck,
loss_predictor}.``. Every source key must map, and with ``--config`` every
model key must be produced with the model's shape (the model is built on the
meta device); anything else stops the conversion.
"""
import argparse
import os.path as osp
import sys
from typing import Optional

import torch

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from mmmim.converters import (HPM_KEYMAP, REFERENCE_SAFE_GLOBALS,  # noqa: E402
                              check_against_model)
from mmmim.utils import build_model_from_config  # noqa: E402
from mmmim.utils.checkpoint import (add_trust_checkpoint_argument,  # noqa
                                    load_checkpoint_file, unwrap_state_dict)

TEACHER = 'target_generator.teacher.'


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

    Raises:
        KeyError: a reference key without a mapping, or no student / EMA
            weights.
        ValueError: the result does not fit ``model``.
    """
    if not any(isinstance(ckpt.get(k), dict) for k in ('state_dict', 'model')):
        raise KeyError('no state_dict / model in the checkpoint, keys: '
                       f'{list(ckpt)}')
    student = HPM_KEYMAP.convert(
        unwrap_state_dict(ckpt, keys=('state_dict', 'model')))
    ema = ckpt.get('ema_state_dict')
    if ema is None:
        if not allow_missing_ema:
            raise KeyError('no ema_state_dict in the checkpoint (pass '
                           'allow_missing_ema to copy the student)')
        teacher = student
    else:
        teacher = HPM_KEYMAP.convert(unwrap_state_dict(ema))
    if set(teacher) != set(student):
        raise KeyError('state_dict and ema_state_dict hold different keys')
    out = dict(student, **{TEACHER + k: v for k, v in teacher.items()})
    if model is not None:
        check_against_model(out, model)
    return dict(state_dict=out,
                meta=dict(converted_from='HPM reference checkpoint',
                          epoch=ckpt.get('epoch')))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='reference HPM checkpoint')
    parser.add_argument('dst', help='output mmmim checkpoint')
    parser.add_argument('--config', help='mmmim HPM config to check keys and '
                        'shapes against (recommended)')
    parser.add_argument('--allow-missing-ema', action='store_true',
                        help='copy the student into the teacher when the '
                        'checkpoint has no ema_state_dict')
    add_trust_checkpoint_argument(parser)
    args = parser.parse_args(argv)
    ckpt = load_checkpoint_file(args.src, trusted=args.trust_checkpoint,
                                extra_safe_globals=REFERENCE_SAFE_GLOBALS)
    model = build_model_from_config(args.config, device='meta') \
        if args.config else None
    out = convert_hpm(ckpt, model, args.allow_missing_ema)
    torch.save(out, args.dst)
    n = len(out['state_dict'])
    print(f'converted {n // 2} student + {n // 2} teacher tensors -> '
          f'{args.dst}' + ('' if model is None else ' (checked against '
                           f'{args.config})'))


if __name__ == '__main__':
    main()
