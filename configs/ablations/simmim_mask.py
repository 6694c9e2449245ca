# SimMIM masking at demo scale (configs/demo/simmim_fashion-mnist.py at
# 400 x 128 images; 32 px images, 4-px patches, an 8 x 8 patch grid).
#   python tools/analysis/ablate.py configs/ablations/simmim_mask.py
_base_ = ['./_base_/mae_budget.py']
base = 'configs/demo/simmim_fashion-mnist.py'
title = 'SimMIM: masking strategy, masked-patch size and ratio'
paper = ('SimMIM (abstract, table 1): random masking with a moderately large '
         'masked-patch size (32 px of 192 / 224) makes a strong pretext '
         'task; small masked patches need higher ratios; square and '
         'block-wise masks are no better.')


def _random(size, ratio):
    return {'pipeline:RandomMaskGenerator.mask_patch_size': size,
            'pipeline:RandomMaskGenerator.mask_ratio': ratio}


points = [
    dict(name='rand4_0.6', label='random 4 px 0.6', options=_random(4, 0.6)),
    dict(name='rand8_0.3', label='random 8 px 0.3', options=_random(8, 0.3)),
    dict(name='rand8_0.6', label='random 8 px 0.6 (demo)', options={}),
    dict(name='rand8_0.8', label='random 8 px 0.8', options=_random(8, 0.8)),
    dict(name='rand16_0.5', label='random 16 px 0.5',
         options=_random(16, 0.5)),
    dict(name='square0.25', label='centred square 0.25', options={
        'pipeline:RandomMaskGenerator': dict(
            type='SquareMaskGenerator', input_size=32, patch_size=4,
            mask_ratio=0.25)}),
    dict(name='block0.4', label='block-wise 0.4', options={
        'pipeline:RandomMaskGenerator': dict(
            type='BlockwiseMaskGenerator', input_size=32, patch_size=4,
            num_masking_patches=26, min_num_patches=4)}),
]
