# ViT's masked patch prediction targets at demo scale
# (configs/ablations/_base_/vit-mpp_fashion-mnist.py, 400 x 128 images).
#   python tools/analysis/ablate.py configs/ablations/vit_mpp.py
_base_ = ['./_base_/mae_budget.py']
base = 'configs/ablations/_base_/vit-mpp_fashion-mnist.py'
title = "ViT's masked patch prediction: targets"
paper = ('ViT appendix B.1.2 (ViT-B/16, JFT): predicting the 3-bit mean '
         'colour, a 4x4 down-sampled 3-bit patch, or regressing the full '
         'patch with L2 all work, L2 slightly worse; 50 % corruption '
         '(80/10/10) is used; 79.9 % ImageNet top-1 after fine-tuning.')
_mean, _std = [72.94] * 3, [90.02] * 3
points = [
    dict(name='mean_colour', label='3-bit mean colour', options={}),
    dict(name='down4x4', label='4x4 cells, 3-bit (1 px here)', options={
        'model.neck.out_stride': 1,
        'model.head.target.downsample': 1}),
    dict(name='l2', label='L2 on the pixels', options={
        'model.neck.out_channels': 3, 'model.neck.out_stride': 1,
        'model.head': dict(_delete_=True, type='MIMTargetHead',
                           patch_size=4, eps=0., criterion='L2',
                           target=dict(type='PixelTarget'))}),
    dict(name='mask_token_only', label='mean colour, 100 % mask token',
         options={'model.backbone.mask_corruption': None}),
]
