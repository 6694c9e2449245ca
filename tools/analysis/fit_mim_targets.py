"""Fit the data-dependent prediction targets of the ablations.

    # iGPT-style colour palette (k-means, 512 colours) for ColorPaletteTarget
    python tools/analysis/fit_mim_targets.py palette CONFIG --out palette.npz \
        [--num-colours 512] [--num-images 2000] [--pixels-per-image 64]
    # PCA basis of patches for PatchPCATarget (MAE's PCA target)
    python tools/analysis/fit_mim_targets.py pca CONFIG --out pca.npz \
        [--patch-size 16] [--num-images 2000]

The images are the config's training images through its training pipeline
and its data preprocessor (the images the model is trained on): the palette
is fitted to their de-normalised colours (0-255, the model's channel
order), the PCA to their normalised patches in MAE's (row, col, channel)
order. Both write an ``.npz`` (``palette``; ``mean``, ``components``,
``variances``) that the targets read.
"""
import argparse
import os
import os.path as osp
import sys

import numpy as np
import torch

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

import mmmim  # noqa: E402,F401
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import set_random_seed  # noqa: E402

from mmmim.models.target_generators.mim_targets import (  # noqa: E402
    fit_color_palette, fit_patch_pca)


def training_images(cfg: Config, num_images: int, seed: int = 0):
    """(N, C, H, W) normalised training images and the preprocessor's
    mean / std (0-255)."""
    from mmengine.dataset import default_collate
    from mmpretrain.registry import DATASETS, MODELS
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    set_random_seed(seed)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    preprocessor = MODELS.build(
        cfg.get('data_preprocessor') or cfg.model.data_preprocessor)
    order = np.random.RandomState(seed).permutation(len(dataset))
    images = []
    for start in range(0, min(num_images, len(dataset)), 256):
        idx = order[start:min(start + 256, num_images)]
        batch = default_collate([dataset[int(i)] for i in idx])
        inputs = preprocessor(batch, False)['inputs']
        if isinstance(inputs, (list, tuple)):  # multi-view pipelines
            inputs = inputs[0]
        images.append(inputs.float())
    mean = preprocessor.mean.view(-1).tolist()
    std = preprocessor.std.view(-1).tolist()
    return torch.cat(images), mean, std


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('kind', choices=['palette', 'pca'])
    parser.add_argument('config', help='the pre-training config')
    parser.add_argument('--out', required=True, help='output .npz')
    parser.add_argument('--num-images', type=int, default=2000)
    parser.add_argument('--num-colours', type=int, default=512)
    parser.add_argument('--pixels-per-image', type=int, default=64,
                        help='palette: pixels sampled per image')
    parser.add_argument('--iters', type=int, default=20,
                        help='palette: k-means iterations')
    parser.add_argument('--patch-size', type=int, default=None,
                        help="pca: patch size (default: the config's "
                        'patch_size)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    images, mean, std = training_images(cfg, args.num_images, args.seed)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    if args.kind == 'palette':
        colours = images * torch.tensor(std).view(1, -1, 1, 1) + \
            torch.tensor(mean).view(1, -1, 1, 1)
        colours = colours.clamp(0, 255).permute(0, 2, 3, 1).reshape(
            images.shape[0], -1, images.shape[1])
        g = torch.Generator().manual_seed(args.seed)
        pick = torch.randint(colours.shape[1],
                             (colours.shape[0], args.pixels_per_image),
                             generator=g)
        sample = colours.gather(
            1, pick[..., None].expand(-1, -1, colours.shape[-1]))
        palette = fit_color_palette(sample.reshape(-1, colours.shape[-1]),
                                    args.num_colours, args.iters, args.seed)
        np.savez(args.out, palette=palette.numpy())
        print(f'{args.num_colours}-colour palette of '
              f'{sample.shape[0] * sample.shape[1]} pixels -> {args.out}')
        return palette
    p = args.patch_size or cfg.get('patch_size')
    if not p:
        raise SystemExit('give --patch-size')
    B, C, H, W = images.shape
    patches = images.reshape(B, C, H // p, p, W // p, p).permute(
        0, 2, 4, 3, 5, 1).reshape(-1, p * p * C)
    mean_, components, variances = fit_patch_pca(patches)
    np.savez(args.out, mean=mean_.numpy(), components=components.numpy(),
             variances=variances.numpy(), patch_size=p)
    explained = (variances.cumsum(0) / variances.sum()).numpy()
    print(f'PCA of {patches.shape[0]} patches ({p}x{p}x{C}) -> {args.out}; '
          'variance explained by 8/16/32 components: '
          + ' / '.join(f'{explained[min(k, len(explained)) - 1]:.3f}'
                       for k in (8, 16, 32)))
    return mean_, components, variances


if __name__ == '__main__':
    main()
