"""Write HPM's picture (paper fig. 2): input | the EMA teacher's predicted
per-patch loss | the easy-to-hard mask it generates (masked patches grey, the
K always-masked hard patches red).

    python tools/analysis/visualize_hpm.py CONFIG CHECKPOINT --out hpm.png \
        [--images a.jpg ...] [--num-images 6] [--epoch E --max-epochs T]

Without ``--images`` the first Fashion-MNIST test images are used. Without
``--epoch`` K is the end-of-ramp value (M * hard_ratio).
"""
import argparse
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

import mmmim  # noqa: E402,F401
from mmengine.config import Config  # noqa: E402
from mmmim.utils import (add_trust_checkpoint_argument,  # noqa
                         build_model_from_config, load_checkpoint_into)
from mmmim.visualization import load_images, preprocess  # noqa: E402
from mmmim.visualization.hpm import render_hpm_figure  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?', help='omit for random init')
    parser.add_argument('--out', default='hpm.png')
    parser.add_argument('--images', nargs='+', help='image files')
    parser.add_argument('--num-images', type=int, default=6)
    parser.add_argument('--epoch', type=float, default=None,
                        help='schedule position for K (default: end)')
    parser.add_argument('--max-epochs', type=float, default=None)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--scale', type=int, default=0,
                        help='upscaling factor (default: to >= 128 px)')
    add_trust_checkpoint_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    torch.manual_seed(args.seed)
    model = build_model_from_config(cfg)
    if args.checkpoint:
        load_checkpoint_into(model, args.checkpoint, strict=True,
                             trusted=args.trust_checkpoint)
    if not hasattr(model, 'target_generator') or not hasattr(
            model.target_generator, 'generate_mask'):
        raise TypeError(f'{type(model).__name__} has no HPM teacher')
    model.eval()
    img_size = model.backbone.patch_embed.init_input_size[0]
    images = load_images(args.images, args.num_images, img_size)
    inputs, mean, std = preprocess(model, images)
    scale = args.scale or max(1, -(-128 // img_size))
    g = torch.Generator().manual_seed(args.seed)
    _, _, mask, k = render_hpm_figure(
        model, inputs, args.out, mean, std, position=args.epoch,
        total=args.max_epochs, scale=scale, generator=g)
    print(f'wrote {args.out} ({len(images)} images, {int(mask[0].sum())}/'
          f'{mask.shape[1]} patches masked, {k} hard)')


if __name__ == '__main__':
    main()
