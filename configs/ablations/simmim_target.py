# SimMIM prediction targets and target resolution at demo scale
# (configs/demo/simmim_fashion-mnist.py at 400 x 128 images). Fashion-MNIST
# is grey: the 512-colour palette is fitted to at most 256 distinct values.
#   python tools/analysis/ablate.py configs/ablations/simmim_target.py
_base_ = ['./_base_/mae_budget.py']
base = 'configs/demo/simmim_fashion-mnist.py'
title = 'SimMIM: target, loss and target resolution'
paper = ('SimMIM (abstract, tables on targets): direct regression of raw '
         'pixels performs no worse than classification targets (colour '
         'bins, iGPT colour clusters, dVAE tokens); the paper also reports '
         'the loss on masked pixels only as better than on all pixels, and '
         'compares down-sampled targets.')
palette_file = 'work_dirs/ablations/_data/palette512_fashion-mnist.npz'
prepare = [
    dict(creates=palette_file,
         command=['tools/analysis/fit_mim_targets.py', 'palette',
                  'configs/demo/simmim_fashion-mnist.py', '--num-colours',
                  '512', '--num-images', '4000', '--out', palette_file])
]
_norm = dict(mean=[72.94] * 3, std=[90.02] * 3)


def _target(neck_channels, target, out_stride=1, **head):
    return {
        'model.neck': dict(_delete_=True, type='SimMIMDecoder',
                           in_channels=128, encoder_stride=4,
                           out_channels=neck_channels, out_stride=out_stride),
        'model.head': dict(_delete_=True, type='MIMTargetHead', patch_size=4,
                           target=target, **head),
    }


points = [
    dict(name='l1', label='L1 pixels (SimMIM)', options={}),
    dict(name='l2', label='L2 pixels', options=_target(
        3, dict(type='PixelTarget'), criterion='L2')),
    dict(name='l1_all', label='L1 on all pixels', options=_target(
        3, dict(type='PixelTarget'), loss_on='all')),
    dict(name='bins8', label='8 bins / channel', options=_target(
        24, dict(type='ColorBinTarget', num_bins=8, **_norm))),
    dict(name='bins256', label='256 bins / channel', options=_target(
        768, dict(type='ColorBinTarget', num_bins=256, **_norm))),
    dict(name='palette512', label='512-colour palette', options=_target(
        512, dict(type='ColorPaletteTarget', palette=palette_file, **_norm))),
    dict(name='down2', label='pixels / 2', options=_target(
        3, dict(type='PixelTarget', downsample=2), out_stride=2)),
    dict(name='down4', label='pixels / 4', options=_target(
        3, dict(type='PixelTarget', downsample=4), out_stride=4)),
    dict(name='down8', label='pixels / 8', options=_target(
        3, dict(type='PixelTarget', downsample=8), out_stride=8)),
]
