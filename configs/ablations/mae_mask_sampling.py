# MAE mask sampling strategies at demo scale (8 x 8 patch grid).
#   python tools/analysis/ablate.py configs/ablations/mae_mask_sampling.py
_base_ = ['./_base_/mae_budget.py']
base = 'configs/demo/mae_fashion-mnist.py'
title = 'MAE: mask sampling'
paper = ('MAE table 1f (ViT-L): random 75 % 84.9 FT / 73.5 linear; block '
         '50 % 83.9 / 72.3; block 75 % 82.8 / 63.9; grid 75 % 84.0 / 66.0: '
         'random sampling at a high ratio is best.')
evaluation = dict(finetune=dict(iters=200, batch_size=64))


def _block(num):
    # BEiT's block-wise mask (blocks of >= 4 of the 64 patches), topped up
    # to an exact count: MAE's encoder needs equal counts per batch
    return dict(type='BlockwiseMaskGenerator', input_size=32, patch_size=4,
                num_masking_patches=num, min_num_patches=4, exact_count=True)


points = [
    dict(name='random75', label='random 75 %', options={}),
    dict(name='block50', label='block 50 %', options={
        'model.mask_ratio': 0.5, 'pipeline:RandomMaskGenerator': _block(32)}),
    dict(name='block75', label='block 75 %', options={
        'pipeline:RandomMaskGenerator': _block(48)}),
    dict(name='grid75', label='grid 75 %', options={
        'pipeline:RandomMaskGenerator': dict(
            type='GridMaskGenerator', input_size=32, patch_size=4,
            stride=2)}),
]
