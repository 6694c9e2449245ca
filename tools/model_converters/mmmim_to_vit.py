"""Convert an mmmim MAE / SimMIM checkpoint back to the reference layout.

    python tools/model_converters/mmmim_to_vit.py mae work_dirs/x/iter_1000.pth mae_encoder.pth
    python tools/model_converters/mmmim_to_vit.py mae CKPT full.pth --with-decoder

The output is ``{'model': {...}}`` as the reference code saves it: the encoder
(timm ViT names for MAE, ``encoder.*`` for SimMIM) and, with
``--with-decoder``, the decoder, for users of other code bases.
"""
import argparse

import torch

from mmmim.converters import VIT_KEYMAPS
from mmmim.utils.checkpoint import (add_trust_checkpoint_argument,
                                    load_checkpoint_file, unwrap_state_dict)

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('method', choices=sorted(VIT_KEYMAPS))
    parser.add_argument('src', help='mmmim checkpoint')
    parser.add_argument('dst', help='reference-layout checkpoint to write')
    parser.add_argument('--with-decoder', action='store_true')
    add_trust_checkpoint_argument(parser)
    args = parser.parse_args(argv)

    state_dict = unwrap_state_dict(
        load_checkpoint_file(args.src, trusted=args.trust_checkpoint))
    prefixes = ('backbone.', 'neck.') if args.with_decoder else ('backbone.', )
    state_dict = {k: v for k, v in state_dict.items() if k.startswith(prefixes)}
    converted = VIT_KEYMAPS[args.method].convert(state_dict, to_mmmim=False)
    torch.save(dict(model=converted), args.dst)
    print(f'wrote {len(converted)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
