# CPU-sized SimMIM on Fashion-MNIST (32 px, patch 4, tiny ViT,
# 8-px mask blocks, 60% masked).
_base_ = [
    '../_base_/models/simmim_vit-base-p16.py',
    '../_base_/datasets/fashion_mnist_mim.py',
    '../_base_/default_runtime.py',
]
img_size = 32
patch_size = 4
embed_dims = 192

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=embed_dims, num_layers=6,
                  num_heads=6, feedforward_channels=embed_dims * 4),
        img_size=img_size,
        patch_size=patch_size,
        drop_path_rate=0.0),
    neck=dict(in_channels=embed_dims, encoder_stride=patch_size),
    head=dict(patch_size=patch_size))

train_pipeline = [
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.67, 1.0),
         backend='cv2', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomMaskGenerator', input_size=img_size,
         patch_size=patch_size, mask_patch_size=8, mask_ratio=0.6),
    dict(type='PackInputs', algorithm_keys=['mask']),
]
train_dataloader = dict(
    batch_size=256,
    num_workers=2,
    dataset=dict(img_size=img_size, pipeline=train_pipeline))

max_iters = 600
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                   weight_decay=0.05),
    clip_grad=dict(max_norm=5.0),
    paramwise_cfg=dict(
        norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0,
        custom_keys={'cls_token': dict(decay_mult=0.)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', T_max=max_iters - 50, eta_min=1e-5,
         by_epoch=False, begin=50, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=max_iters, by_epoch=False,
                    max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
