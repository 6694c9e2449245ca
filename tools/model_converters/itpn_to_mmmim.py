"""Convert a reference iTPN pre-training checkpoint (pixel or CLIP) to mmmim.

    python tools/model_converters/itpn_to_mmmim.py SRC DST [--config CFG]
        [--cfg-options k=v ...]

The reference layout
(``tests/data/official_keys/itpn_base_{pixel_dec512d8b,clip_b16}.txt``)
maps to ``iTPNPretrainer`` / ``iTPNCLIPPretrainer``:

- ``patch_embed.*``, ``blocks.*`` -> ``backbone.*`` (same names, the block
  list is laid out as the reference's); ``absolute_pos_embed`` ->
  ``backbone.pos_embed``;
- pyramid (``align_dim_*``, ``split_*``, ``block_*``, ``fpn_modules``) ->
  ``neck.*``;
- pixel: ``decoder_*`` and ``mask_token`` -> ``decoder.*``;
- CLIP: ``mask_token`` -> ``backbone.mask_token``; ``decoder_embed``,
  ``norm``, ``lm_head``, ``norm_cls``, ``lm_cls_head``, ``cls_pt_layers`` ->
  ``head.*``; ``relative_position_index`` is dropped (mmmim builds it).

One key map per variant (``KEYMAPS``, as the ViT, HPM and SIM converters)
renames; a reference key without a mapping stops the conversion. Every
converted tensor is then checked against the model built from the config
(on the meta device): any key the model lacks, any model key the checkpoint
lacks (teacher weights excepted) and any shape mismatch stops the conversion
with the list of offending keys -- e.g. a checkpoint whose pyramid is 512
wide does not silently half-load into a 256-wide neck. The output is an
mmengine-style ``{'state_dict': ..., 'meta': ...}`` file, from which
``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')`` (or
``prefix='neck.'``) loads the parts for transfer.
"""
import argparse
import os.path as osp
import sys
from typing import Dict, Optional

import torch

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from mmmim.converters import (KeyMap, check_against_model,  # noqa: E402
                              load_reference_checkpoint)
from mmmim.utils import build_model_from_config  # noqa: E402
from mmmim.utils.checkpoint import add_trust_checkpoint_argument  # noqa

NECK_PREFIXES = ('align_dim_16tofpn.', 'align_dim_16to8.', 'align_dim_8to4.',
                 'split_16to8.', 'split_8to4.', 'block_16to8.', 'block_8to4.',
                 'fpn_modules.')
CLIP_HEAD_PREFIXES = ('decoder_embed.', 'norm.', 'lm_head.', 'norm_cls.',
                      'lm_cls_head.', 'cls_pt_layers.')
DEFAULT_CONFIGS = dict(pixel='configs/itpn/itpn-base_pixel_800e.py',
                       clip='configs/itpn/itpn-base_clip_800e.py')

_SHARED = [
    ('absolute_pos_embed', 'backbone.pos_embed'),
    ('patch_embed.{x}', 'backbone.patch_embed.{x}'),
    ('blocks.{x}', 'backbone.blocks.{x}'),
] + [(p + '{x}', 'neck.' + p + '{x}') for p in NECK_PREFIXES]
# mmmim computes the relative position index itself
_IGNORE = [r'(^|\.)relative_position_index$']
KEYMAPS = dict(
    pixel=KeyMap(_SHARED + [('mask_token', 'decoder.mask_token'),
                            ('decoder_{x}', 'decoder.decoder_{x}')],
                 ignore=_IGNORE),
    clip=KeyMap(_SHARED + [('mask_token', 'backbone.mask_token')] +
                [(p + '{x}', 'head.' + p + '{x}')
                 for p in CLIP_HEAD_PREFIXES],
                ignore=_IGNORE))


def detect_variant(state: Dict[str, torch.Tensor]) -> str:
    """'clip' when the checkpoint has the CLIP heads, else 'pixel'."""
    return 'clip' if 'lm_head.weight' in state else 'pixel'


def build_model(config: str, cfg_options: Optional[dict] = None,
                variant: str = 'pixel') -> torch.nn.Module:
    """The config's model on the meta device (names and shapes only)."""
    options = dict(cfg_options or {})
    if variant == 'clip':
        # the teacher is not in the checkpoint: a stand-in of no size
        options['model.target_generator'] = dict(
            _delete_=True, type='iTPNCLIPTeacher',
            arch=dict(input_resolution=16, patch_size=16, width=64, layers=1,
                      heads=1, output_dim=8))
    return build_model_from_config(config, device='meta',
                                   cfg_options=options)


def convert(state: Dict[str, torch.Tensor],
            model: torch.nn.Module,
            variant: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """Map a reference state dict and check it against ``model``.

    Raises:
        KeyError: a reference key without an mmmim name.
        ValueError: the result does not fit ``model`` (every unexpected,
            missing and shape-mismatched key listed; the frozen teacher is
            not part of the checkpoint).
    """
    variant = variant or detect_variant(state)
    out = KEYMAPS[variant].convert(state)
    try:
        check_against_model(out, model, allow_missing=('target_generator.', ))
    except ValueError as e:
        hint = ''
        neck_w = state.get('align_dim_16tofpn.weight')
        want = model.state_dict().get('neck.align_dim_16tofpn.weight')
        if neck_w is not None and want is not None and \
                neck_w.shape[0] != want.shape[0]:
            hint = (f'\nThe checkpoint\'s pyramid is {neck_w.shape[0]} '
                    f'wide, the model\'s {want.shape[0]}: build the model '
                    f'with neck.fpn_dim={neck_w.shape[0]} (and the matching '
                    'decoder/head fpn_dim).')
        raise ValueError(f'reference iTPN ({variant}) checkpoint: {e}'
                         f'{hint}') from None
    return out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='reference iTPN checkpoint')
    parser.add_argument('dst', help='output mmmim checkpoint')
    parser.add_argument('--config',
                        help='mmmim config the checkpoint must fit '
                        '(default: the base pixel / CLIP config)')
    parser.add_argument('--variant', choices=['pixel', 'clip'],
                        help='detected from the keys when omitted')
    from mmengine.config import DictAction
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides of the config, key=value')
    add_trust_checkpoint_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    state = load_reference_checkpoint(args.src, trusted=args.trust_checkpoint)
    variant = args.variant or detect_variant(state)
    config = args.config or DEFAULT_CONFIGS[variant]
    out = convert(state, build_model(config, args.cfg_options, variant),
                  variant)
    torch.save(
        dict(state_dict=out,
             meta=dict(source=osp.abspath(args.src), variant=variant,
                       config=config)), args.dst)
    print(f'converted {len(out)} tensors ({variant}) -> {args.dst}')


if __name__ == '__main__':
    main()
