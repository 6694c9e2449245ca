# The grid behind the SimMIM demo (configs/demo/simmim_fashion-mnist.py) at
# its budget (400 x 128 images): masking unit and ratio, learning rate,
# the encoder (SimMIM's ViT vs MAE's with absolute sin-cos positions) and
# per-patch normalised targets.
#   python tools/analysis/ablate.py configs/ablations/simmim_demo.py
_base_ = ['./_base_/mae_budget.py']
base = 'configs/demo/simmim_fashion-mnist.py'
title = 'SimMIM demo settings'
paper = ('SimMIM (Xie et al., CVPR 2022) table 1: random masking with a '
         'masked-patch size of 32 px (1/7 of a 224 image) and a ratio '
         'around 0.6 is best; norm-pix targets are not part of SimMIM.')
points = [
    dict(name='base', label='mask 8 px 0.6, lr 1.5e-3', options={}),
    dict(name='mask4', label='mask 4 px (per patch) 0.6', options={
        'pipeline:RandomMaskGenerator.mask_patch_size': 4}),
    dict(name='mask8_r0.75', label='mask 8 px 0.75', options={
        'pipeline:RandomMaskGenerator.mask_ratio': 0.75}),
    dict(name='lr3e-3', label='lr 3e-3', options={
        'optim_wrapper.optimizer.lr': 3e-3}),
    dict(name='vit_sincos', label="MAE's ViT (sin-cos pos.)", options={
        'model.backbone': dict(
            _delete_=True, type='MaskedViT',
            arch=dict(embed_dims=128, num_layers=4, num_heads=4,
                      feedforward_channels=512),
            img_size=32, patch_size=4, mask_mode='replace')}),
    dict(name='normpix_l1', label='norm-pix target (L1)', options={
        'model.head': dict(
            _delete_=True, type='MIMTargetHead', patch_size=4,
            target=dict(type='PixelTarget', norm_patch_size=4))}),
]
