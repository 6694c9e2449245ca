"""Convert reference SIM (Siamese image modeling) checkpoints to mmmim.

    python tools/model_converters/sim_to_mmmim.py sim_base_1600ep.pth out.pth
    python tools/model_converters/sim_to_mmmim.py CKPT out.pth --config CONFIG

Both branches are converted: the online encoder, projector and predictor, and
the momentum (``mm_*``) encoder and projector. Every key is mapped (an unknown
key is an error) and the result is checked against the config's model
(default ``configs/sim/sim-vit-base_1600e.py``): every model key must be
provided with the right shape, else the converter fails naming the keys.
The output loads with ``load_from`` (resumes SIM pre-training) or, for
transfer, ``init_cfg=dict(type='Pretrained', checkpoint=...,
prefix='backbone.')``.
"""
import argparse
import os.path as osp
import sys
from typing import Dict, Optional

import torch

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from mmmim.converters import (KeyMap, VIT_BLOCK_RENAMES,  # noqa: E402
                              check_against_model, load_reference_checkpoint)
from mmmim.utils import build_model_from_config  # noqa: E402
from mmmim.utils.checkpoint import add_trust_checkpoint_argument  # noqa: E402

DEFAULT_CONFIG = osp.join(
    osp.dirname(__file__), '..', '..', 'configs', 'sim',
    'sim-vit-base_1600e.py')

# reference name -> mmmim name; projector / predictor blocks keep timm's
# names (norm1.bn, attn.qkv, mlp.fc1, ...), encoder blocks are renamed to
# mmpretrain's (ln1, ffn.layers.0.0, ...)
SIM_KEYMAP = KeyMap(
    [
        # online encoder
        ('cls_token', 'backbone.cls_token'),
        ('pos_embed', 'backbone.pos_embed'),
        ('patch_embed.proj.{x}', 'backbone.patch_embed.projection.{x}'),
        ('blocks.{i}.{b}', 'backbone.layers.{i}.{b}'),
        # online projector and predictor
        ('decoder_embed.{x}', 'head.projector.embed.{x}'),
        ('projector_decoder_blocks.{i}.{x}', 'head.projector.blocks.{i}.{x}'),
        ('mask_token', 'head.predictor.mask_token'),
        ('decoder_pos_embed', 'head.predictor.pos_embed'),
        ('decoder_pos_mlp.{x}', 'head.predictor.rel_pos_proj.{x}'),
        ('predictor_decoder_blocks.{i}.{x}', 'head.predictor.blocks.{i}.{x}'),
        ('decoder_pred.{x}', 'head.predictor.pred.{x}'),
        # momentum branch
        ('mm_cls_token', 'momentum_branch.cls_token'),
        ('mm_mask_token', 'momentum_branch.mask_token'),
        ('mm_patch_embed.proj.{x}',
         'momentum_branch.patch_embed.projection.{x}'),
        ('mm_blocks.{i}.{b}', 'momentum_branch.layers.{i}.{b}'),
        ('mm_decoder_embed.{x}', 'momentum_branch.projector.embed.{x}'),
        ('mm_projector_decoder_blocks.{i}.{x}',
         'momentum_branch.projector.blocks.{i}.{x}'),
    ],
    block_renames=VIT_BLOCK_RENAMES)


def convert_sim(state_dict: Dict[str, torch.Tensor],
                model: Optional[torch.nn.Module] = None
                ) -> Dict[str, torch.Tensor]:
    """Rename a reference SIM state dict; check it against ``model``.

    Raises ``KeyError`` for a reference key without a mapping and
    ``ValueError`` when the result misses a model key, has an unexpected one
    or a shape differs.
    """
    converted = SIM_KEYMAP.convert(state_dict)
    if model is not None:
        check_against_model(converted, model)
    return converted


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='reference SIM checkpoint')
    parser.add_argument('dst', help='mmmim checkpoint to write')
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='check the result against this config\'s model')
    add_trust_checkpoint_argument(parser)
    args = parser.parse_args(argv)
    state_dict = convert_sim(
        load_reference_checkpoint(args.src, trusted=args.trust_checkpoint),
        build_model_from_config(args.config, device='meta'))
    torch.save(dict(state_dict=state_dict, meta=dict(converted_from=args.src)),
               args.dst)
    print(f'wrote {len(state_dict)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
