"""Extract the backbone (and, for iTPN, the pyramid neck) of an mmmim
pre-training checkpoint into a small checkpoint for downstream training.

    # ViT encoders (MAE / SimMIM / HPM / SIM): keys stay 'backbone.*', so the
    # downstream init_cfg keeps prefix='backbone.'
    python tools/model_converters/extract_backbone.py \
        work_dirs/mae/epoch_1600.pth mae_vit-base_backbone.pth
    # iTPN: backbone and the pre-trained pyramid ('backbone.*', 'neck.*')
    python tools/model_converters/extract_backbone.py \
        work_dirs/itpn/epoch_1600.pth itpn_base.pth --parts backbone neck
    # HPM: the EMA teacher's encoder instead of the student's
    python tools/model_converters/extract_backbone.py \
        work_dirs/hpm/epoch_800.pth hpm_teacher.pth --source teacher
    # plain keys (no prefix), e.g. for init_cfg without `prefix`
    python tools/model_converters/extract_backbone.py in.pth out.pth --strip-prefix

Downstream loading goes through mmmim's checked loader either way (every
missing / unexpected key is logged; loading nothing raises).
"""
import argparse
import re
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import os.path as osp
import sys

import torch

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from mmmim.utils.checkpoint import (add_trust_checkpoint_argument,  # noqa
                                    load_checkpoint_file, unwrap_state_dict)

# Where an EMA teacher keeps each part inside an mmmim algorithm.
TEACHER_PREFIX = 'target_generator.teacher.'


def extract(state_dict: Dict[str, torch.Tensor],
            parts: Sequence[str] = ('backbone', ),
            source: str = 'student',
            strip_prefix: bool = False,
            drop: Optional[str] = None) -> 'OrderedDict[str, torch.Tensor]':
    """Select ``parts`` of an algorithm state dict.

    Args:
        state_dict (dict): the algorithm's checkpoint or state dict
            (unwrapped by :func:`mmmim.utils.checkpoint.unwrap_state_dict`:
            ``state_dict`` followed, ``module.`` prefixes removed).
        parts (Sequence[str]): top-level modules to keep, e.g.
            ``('backbone', )`` or ``('backbone', 'neck')``.
        source (str): ``'student'`` (the trained model) or ``'teacher'``
            (an EMA teacher stored under ``target_generator.teacher.``,
            as HPM does).
        strip_prefix (bool): remove ``'<part>.'`` from the keys (only with
            one part).
        drop (str, optional): regular expression of keys (after
            selection, before stripping) to leave out, e.g. ``'mask_token'``.

    Returns:
        OrderedDict: the selected tensors.
    """
    if strip_prefix and len(parts) != 1:
        raise ValueError('--strip-prefix needs exactly one part')
    state_dict = unwrap_state_dict(state_dict)
    base = TEACHER_PREFIX if source == 'teacher' else ''
    out = OrderedDict()
    for part in parts:
        prefix = f'{base}{part}.'
        selected = {k[len(base):]: v for k, v in state_dict.items()
                    if k.startswith(prefix)}
        if not selected:
            heads = sorted({k.split('.', 1)[0] for k in state_dict})
            raise KeyError(f'no key starts with {prefix!r}; top-level '
                           f'modules: {heads}')
        for k, v in selected.items():
            if drop and re.search(drop, k):
                continue
            out[k[len(part) + 1:] if strip_prefix else k] = v
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='mmmim pre-training checkpoint')
    parser.add_argument('dst', help='output checkpoint')
    parser.add_argument('--parts', nargs='+', default=['backbone'],
                        help="modules to keep (iTPN: 'backbone neck')")
    parser.add_argument('--source', choices=['student', 'teacher'],
                        default='student')
    parser.add_argument('--strip-prefix', action='store_true')
    parser.add_argument('--drop', help='regex of keys to leave out')
    add_trust_checkpoint_argument(parser)
    args = parser.parse_args(argv)

    state_dict = load_checkpoint_file(args.src, trusted=args.trust_checkpoint)
    out = extract(state_dict, args.parts, args.source, args.strip_prefix,
                  args.drop)
    meta = dict(source=args.src, parts=args.parts, from_=args.source,
                stripped=args.strip_prefix)
    torch.save(dict(meta=meta, state_dict=out), args.dst)
    for part in args.parts:
        n = sum(1 for k in out if args.strip_prefix or k.startswith(part))
        print(f'{part}: {n} tensors')
    print(f'saved {len(out)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
