# ViT's masked patch prediction (Dosovitskiy et al., ICLR 2021, appendix
# B.1.2) at demo scale: 50 % of the patches corrupted (80 % mask token, 10 %
# another patch's embedding, 10 % unchanged) in a ViT that encodes every
# patch, a linear head per patch predicting the 3-bit mean colour (512
# classes) of each corrupted patch. The MAE demo's ViT (128 wide, 4 blocks,
# patch 4, 32 px), data and optimiser; SimMIMPretrainer composes it.
_base_ = ['../../demo/mae_fashion-mnist.py']
mean, std = [72.94] * 3, [90.02] * 3
model = dict(
    _delete_=True,
    type='SimMIMPretrainer',
    mask_ratio=0.5,
    backbone=dict(
        type='MaskedViT',
        arch=dict(embed_dims=128, num_layers=4, num_heads=4,
                  feedforward_channels=512),
        img_size=32, patch_size=4, mask_mode='replace',
        mask_corruption=(0.8, 0.1, 0.1)),
    neck=dict(type='SimMIMDecoder', in_channels=128, encoder_stride=4,
              out_channels=512, out_stride=4),
    head=dict(type='MIMTargetHead', patch_size=4, eps=0.,
              target=dict(type='ColorBinTarget', num_bins=8, joint=True,
                          downsample=4, mean=mean, std=std)))
train_pipeline = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.5, 1.0),
         backend='cv2', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomMaskGenerator', input_size=32, patch_size=4,
         mask_ratio=0.5),
    dict(type='PackInputs', algorithm_keys=['mask']),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
