"""Convert reference MAE / SimMIM checkpoints to mmmim checkpoints.

    python tools/model_converters/vit_to_mmmim.py mae  mae_pretrain_vit_base.pth  out.pth
    python tools/model_converters/vit_to_mmmim.py mae  mae_pretrain_vit_base_full.pth out.pth \
        --config configs/mae/mae-vit-base_pixel_1600e.py
    python tools/model_converters/vit_to_mmmim.py simmim simmim_pretrain__vit_base__img224__800ep.pth out.pth

Every key is mapped (an unknown key is an error, never silently dropped). With
``--config`` the result is checked against the config's model: shapes must match
and only the decoder may be missing (encoder-only MAE checkpoints).
The output loads with ``load_from`` or ``init_cfg=dict(type='Pretrained', ...)``.
"""
import argparse

import torch

from mmmim.converters import (VIT_KEYMAPS, check_against_model,
                              load_reference_checkpoint)
from mmmim.utils import build_model_from_config
from mmmim.utils.checkpoint import add_trust_checkpoint_argument

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('method', choices=sorted(VIT_KEYMAPS))
    parser.add_argument('src', help='reference checkpoint')
    parser.add_argument('dst', help='mmmim checkpoint to write')
    parser.add_argument('--config', help='check the result against this '
                        "config's model")
    add_trust_checkpoint_argument(parser)
    args = parser.parse_args(argv)

    state_dict = VIT_KEYMAPS[args.method].convert(
        load_reference_checkpoint(args.src, trusted=args.trust_checkpoint))
    if args.config:
        missing = check_against_model(
            state_dict, build_model_from_config(args.config, device='meta'),
            allow_missing=('neck.', ))
        if missing:
            print(f'encoder-only checkpoint: {len(missing)} decoder keys are '
                  'not in it')
    torch.save(dict(state_dict=state_dict, meta=dict(converted_from=args.src)),
               args.dst)
    print(f'wrote {len(state_dict)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
