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
import os.path as osp

import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint

import mmmim  # noqa: F401
from mmmim.utils import build_model_from_config
from mmmim.visualization import reconstruction_grid
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


def load_images(args, img_size):
    """uint8 RGB images (H, W, 3) resized to the model's input size."""
    if args.images:
        images = []
        for path in args.images:
            if not osp.isfile(path):
                raise FileNotFoundError(f'image not found: {path}')
            img = mmcv.imread(path, channel_order='rgb')
            if img is None:
                raise ValueError(f'cannot read image {path}')
            images.append(mmcv.imresize(img, (img_size, img_size),
                                        interpolation='bicubic'))
        return images
    from mmmim.datasets import FashionMNISTIDX
    dataset = FashionMNISTIDX(split='test', img_size=img_size,
                              num_samples=args.num_images)
    return [dataset.get_data_info(i)['img'] for i in range(len(dataset))]


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    model = build_model_from_config(cfg)
    if args.checkpoint:
        load_checkpoint(model, args.checkpoint, map_location='cpu',
                        strict=True)
    model.eval()

    img_size = cfg.model.backbone.get('img_size', 224)
    images = load_images(args, img_size)
    inputs = torch.stack([torch.from_numpy(img).permute(2, 0, 1)
                          for img in images])
    data = model.data_preprocessor(
        dict(inputs=[inputs.float()], data_samples=None), False)
    inputs = data['inputs'][0]

    generator = find_mask_generator(cfg)
    if generator is not None:
        mask = torch.stack([
            torch.as_tensor(generator(dict(img=img))['mask']).flatten()
            for img in images]).bool()
    else:
        mask = model.get_mask(inputs, None)

    pre = model.data_preprocessor
    mean = (pre.mean.flatten() if pre._enable_normalize else
            torch.zeros(3)).tolist()
    std = (pre.std.flatten() if pre._enable_normalize else
           torch.ones(3)).tolist()
    scale = args.scale or max(1, -(-128 // img_size))
    side = int(round(mask.shape[1]**.5))  # square images, square grid
    grid = reconstruction_grid(model, inputs, mask, mean, std,
                               grid=(side, side), scale=scale)
    mmcv.imwrite(grid[..., ::-1], args.out)  # RGB -> BGR for cv2
    print(f'wrote {args.out} ({len(images)} images, '
          f'{int(mask[0].sum())}/{mask.shape[1]} patches masked)')


if __name__ == '__main__':
    main()
