"""Write a PNG grid of reconstructions of a pre-trained MIM model.

    python tools/analysis/visualize_reconstruction.py CONFIG CHECKPOINT \
        [--images a.jpg b.png ...] [--num-images 6] [--out recon.png] [--seed 0]

Columns: input, masked input (masked patches grey), reconstruction, and the
reconstruction with the visible patches pasted back. Without ``--images`` the
first Fashion-MNIST test images are used. The mask comes from the config's
MaskGenerator transform when its pipeline has one (the masks the model was
trained with), otherwise from the model's own random masking. Reconstructions
of ``norm_pix`` models are de-normalised with each patch's true mean and std.
"""
import argparse

import mmcv
import numpy as np
import torch
from mmengine.config import Config

import mmmim  # noqa: F401
from mmmim.utils import (add_trust_checkpoint_argument,  # noqa
                         build_model_from_config, load_checkpoint_into)
from mmmim.visualization import (load_images, preprocess,
                                 reconstruction_grid)
from mmpretrain.registry import TRANSFORMS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?', help='omit for random init')
    parser.add_argument('--images', nargs='+', help='image files')
    parser.add_argument('--num-images', type=int, default=6)
    parser.add_argument('--out', default='reconstruction.png')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--scale', type=int, default=0,
                        help='upscaling factor (default: to >= 128 px)')
    add_trust_checkpoint_argument(parser)
    return parser.parse_args(argv)


def find_mask_generator(cfg):
    """The MaskGenerator transform of the config's training pipeline, if any."""
    try:
        pipeline = cfg.train_dataloader.dataset.pipeline
    except AttributeError:
        return None
    for t in pipeline:
        if str(t.get('type', '')).endswith('MaskGenerator'):
            return TRANSFORMS.build(t)
    return None


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    model = build_model_from_config(cfg)
    if args.checkpoint:
        load_checkpoint_into(model, args.checkpoint, strict=True,
                             trusted=args.trust_checkpoint)
    model.eval()

    img_size = cfg.model.backbone.get('img_size', 224)
    images = load_images(args.images, args.num_images, img_size)
    inputs, mean, std = preprocess(model, images)

    generator = find_mask_generator(cfg)
    if generator is not None:
        mask = torch.stack([
            torch.as_tensor(generator(dict(img=img))['mask']).flatten()
            for img in images]).bool()
    else:
        mask = model.get_mask(inputs, None)

    scale = args.scale or max(1, -(-128 // img_size))
    side = int(round(mask.shape[1]**.5))  # square images, square grid
    grid = reconstruction_grid(model, inputs, mask, mean, std,
                               grid=(side, side), scale=scale)
    mmcv.imwrite(grid[..., ::-1], args.out)  # RGB -> BGR for cv2
    print(f'wrote {args.out} ({len(images)} images, '
          f'{int(mask[0].sum())}/{mask.shape[1]} patches masked)')


if __name__ == '__main__':
    main()
