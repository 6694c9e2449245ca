# CPU-sized MAE on Fashion-MNIST (32 px, patch 4, tiny ViT).
# tools/run_demo.sh runs it and prints the encoder's kNN accuracy against the
# same encoder at random init.
_base_ = [
    '../_base_/models/mae_vit-base-p16.py',
    '../_base_/datasets/fashion_mnist_mim.py',
    '../_base_/default_runtime.py',
]
img_size = 32
patch_size = 4
num_patches = (img_size // patch_size)**2
embed_dims = 128

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=embed_dims, num_layers=4,
                  num_heads=4, feedforward_channels=embed_dims * 4),
        img_size=img_size,
        patch_size=patch_size),
    neck=dict(
        num_patches=num_patches,
        patch_size=patch_size,
        embed_dim=embed_dims,
        decoder_embed_dim=96,
        decoder_depth=2,
        decoder_num_heads=4),
    head=dict(patch_size=patch_size))

train_pipeline = [
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.5, 1.0),
         backend='cv2', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomMaskGenerator', input_size=img_size,
         patch_size=patch_size, mask_ratio=0.75),
    dict(type='PackInputs', algorithm_keys=['mask']),
]
train_dataloader = dict(
    batch_size=128,
    num_workers=2,
    dataset=dict(img_size=img_size, pipeline=train_pipeline))

max_iters = 800
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1.5e-3, betas=(0.9, 0.95),
                   weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0,
        custom_keys={'pos_embed': dict(decay_mult=0.),
                     'mask_token': dict(decay_mult=0.),
                     'cls_token': dict(decay_mult=0.)}))
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
