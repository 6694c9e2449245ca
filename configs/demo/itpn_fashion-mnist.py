# CPU-sized iTPN pixel pre-training on Fashion-MNIST: a tiny HiViT
# (width 128, 1 + 1 MLP blocks, 4 attention blocks) on 32 px images. The
# patch size is 8 (stem conv 2x2 / stride 2, 4x4 inner tokens per patch), so
# the 32 px image has a 4 x 4 patch grid. 50 % masking (8 of 16 patches):
# with so few patches it gave better kNN features than the 75 % of ImageNet.
# 1200 iterations of 128 images (run times: docs/demo_results.md).
#   python tools/train.py configs/demo/itpn_fashion-mnist.py
#   python tools/analysis/evaluate_representation.py \
#       configs/demo/itpn_fashion-mnist.py --checkpoint CKPT --compare-random-init
_base_ = [
    '../_base_/datasets/fashion_mnist_mim.py',
    '../_base_/default_runtime.py',
]
img_size = 32
patch_size = 8
embed_dims = 128

model = dict(
    type='iTPNPretrainer',
    mask_ratio=0.5,
    backbone=dict(
        type='iTPNBackbone',
        arch=dict(embed_dims=embed_dims, depths=[1, 1, 4], num_heads=4),
        img_size=img_size,
        patch_size=patch_size,
        mask_mode='drop'),
    neck=dict(type='iTPNPyramidNeck', in_channels=embed_dims, fpn_dim=64,
              fpn_depth=1),
    decoder=dict(
        type='iTPNPixelDecoder',
        num_patches=(img_size // patch_size)**2,
        patch_size=patch_size,
        fpn_dim=64,
        embed_dim=96,
        depth=2,
        num_heads=4),
    head=dict(type='iTPNPixelHead', norm_pix=True, patch_size=patch_size))

train_pipeline = [
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.5, 1.0),
         backend='cv2', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomMaskGenerator', input_size=img_size,
         patch_size=patch_size, mask_ratio=0.5),
    dict(type='PackInputs', algorithm_keys=['mask']),
]
train_dataloader = dict(
    batch_size=128,
    num_workers=2,
    dataset=dict(img_size=img_size, pipeline=train_pipeline))

max_iters = 1200
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1.5e-3, betas=(0.9, 0.95),
                   weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0,
        custom_keys={'pos_embed': dict(decay_mult=0.),
                     'mask_token': dict(decay_mult=0.)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=100),
    dict(type='CosineAnnealingLR', T_max=max_iters - 100, eta_min=1e-5,
         by_epoch=False, begin=100, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=max_iters, by_epoch=False,
                    max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
