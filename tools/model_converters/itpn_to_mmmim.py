"""Convert a reference iTPN pre-training checkpoint (pixel or CLIP) to mmmim.

    python tools/model_converters/itpn_to_mmmim.py SRC DST [--config CFG]
        [--cfg-options k=v ...]

The reference layout (``official_keys/itpn_base_{pixel_dec512d8b,clip_b16}``)
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

Every converted tensor is checked against the model built from the config
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
from collections import OrderedDict
from typing import Dict, Optional

import torch

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

NECK_PREFIXES = ('align_dim_16tofpn.', 'align_dim_16to8.', 'align_dim_8to4.',
                 'split_16to8.', 'split_8to4.', 'block_16to8.', 'block_8to4.',
                 'fpn_modules.')
CLIP_HEAD_PREFIXES = ('decoder_embed.', 'norm.', 'lm_head.', 'norm_cls.',
                      'lm_cls_head.', 'cls_pt_layers.')
DEFAULT_CONFIGS = dict(pixel='configs/itpn/itpn-base_pixel_800e.py',
                       clip='configs/itpn/itpn-base_clip_800e.py')


class ConversionError(RuntimeError):
    """The checkpoint does not fit the mmmim model; nothing was written."""


def detect_variant(state: Dict[str, torch.Tensor]) -> str:
    """'clip' when the checkpoint has the CLIP heads, else 'pixel'."""
    return 'clip' if 'lm_head.weight' in state else 'pixel'


def unwrap(checkpoint) -> Dict[str, torch.Tensor]:
    """The parameter dict of a reference checkpoint (``model``/``state_dict``
    wrappers and DDP's ``module.`` prefix removed)."""
    state = checkpoint
    for key in ('model', 'state_dict', 'module'):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in state.items())


def map_key(key: str, variant: str) -> Optional[str]:
    """mmmim name of a reference key (None: dropped)."""
    if key == 'relative_position_index' or key.endswith(
            '.relative_position_index'):
        return None
    if key == 'absolute_pos_embed':
        return 'backbone.pos_embed'
    if key.startswith(('patch_embed.', 'blocks.')):
        return 'backbone.' + key
    if key.startswith(NECK_PREFIXES):
        return 'neck.' + key
    if key == 'mask_token':
        return 'backbone.mask_token' if variant == 'clip' \
            else 'decoder.mask_token'
    if variant == 'pixel' and key.startswith('decoder_'):
        return 'decoder.' + key
    if variant == 'clip' and key.startswith(CLIP_HEAD_PREFIXES):
        return 'head.' + key
    return 'UNMAPPED.' + key


def convert(state: Dict[str, torch.Tensor],
            target_shapes: Dict[str, torch.Size],
            variant: Optional[str] = None,
            ignore_missing_prefixes=('target_generator.', )):
    """Map and check a reference state dict.

    Args:
        state: Reference parameters.
        target_shapes: ``name -> shape`` of the mmmim model's state dict.
        variant: 'pixel' or 'clip' (detected when None).
        ignore_missing_prefixes: Model keys allowed to be absent from the
            checkpoint (the frozen teacher is not part of it).

    Returns:
        OrderedDict: The converted state dict.

    Raises:
        ConversionError: Listing unmapped, unexpected, missing and
            shape-mismatched keys.
    """
    variant = variant or detect_variant(state)
    out = OrderedDict()
    unmapped, mismatched, unexpected = [], [], []
    for key, value in state.items():
        new = map_key(key, variant)
        if new is None:
            continue
        if new.startswith('UNMAPPED.'):
            unmapped.append(key)
            continue
        if new not in target_shapes:
            unexpected.append(f'{key} -> {new}')
            continue
        if tuple(value.shape) != tuple(target_shapes[new]):
            mismatched.append(f'{key} -> {new}: checkpoint '
                              f'{tuple(value.shape)}, model '
                              f'{tuple(target_shapes[new])}')
            continue
        out[new] = value
    missing = [
        k for k in target_shapes
        if k not in out and not k.startswith(tuple(ignore_missing_prefixes))
        and not k.endswith('relative_position_index')
    ]
    problems = []
    for title, keys in (('shape mismatches', mismatched),
                        ('keys the model does not have', unexpected),
                        ('keys with no mmmim name', unmapped),
                        ('model keys missing from the checkpoint', missing)):
        if keys:
            problems.append(f'{len(keys)} {title}:\n  ' + '\n  '.join(keys))
    if problems:
        hint = ''
        neck_w = state.get('align_dim_16tofpn.weight')
        want = target_shapes.get('neck.align_dim_16tofpn.weight')
        if neck_w is not None and want is not None and \
                neck_w.shape[0] != want[0]:
            hint = (f'\nThe checkpoint\'s pyramid is {neck_w.shape[0]} wide, '
                    f'the model\'s {want[0]}: build the model with '
                    f'neck.fpn_dim={neck_w.shape[0]} (and the matching '
                    'decoder/head fpn_dim).')
        raise ConversionError(
            f'reference iTPN ({variant}) checkpoint does not fit the mmmim '
            'model; nothing converted.\n' + '\n'.join(problems) + hint)
    return out


def model_shapes(config: str, cfg_options: Optional[dict] = None,
                 variant: str = 'pixel') -> Dict[str, torch.Size]:
    """State-dict shapes of the config's model, built on the meta device."""
    import mmmim  # noqa: F401  (registers the components)
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model_cfg = cfg.model
    if variant == 'clip':
        # the teacher is not in the checkpoint: a stand-in of no size
        model_cfg.target_generator = dict(
            type='iTPNCLIPTeacher',
            arch=dict(input_resolution=16, patch_size=16, width=64, layers=1,
                      heads=1, output_dim=8))
    with torch.device('meta'):
        model = MODELS.build(model_cfg)
    return OrderedDict((k, v.shape) for k, v in model.state_dict().items())


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
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    state = unwrap(torch.load(args.src, map_location='cpu',
                              weights_only=False))
    variant = args.variant or detect_variant(state)
    config = args.config or DEFAULT_CONFIGS[variant]
    shapes = model_shapes(config, args.cfg_options, variant)
    try:
        out = convert(state, shapes, variant)
    except ConversionError as e:
        sys.exit(f'error: {e}')
    torch.save(
        dict(state_dict=out,
             meta=dict(source=osp.abspath(args.src), variant=variant,
                       config=config)), args.dst)
    print(f'converted {len(out)} tensors ({variant}) -> {args.dst}')


if __name__ == '__main__':
    main()
