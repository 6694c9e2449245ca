# CPU-sized SIM on Fashion-MNIST (32 px, patch 8, tiny ViT).
# Two views with crop geometry, lighter colour augmentation than ImageNet's
# (grey 32 px images), a block-wise mask of exactly 10 of 16 patches on view 1
# (the reference's 118 / 196), momentum 0.99 -> 1, dense UniGrad.
# Evaluate with tools/analysis/evaluate_representation.py (see docs/sim.md).
_base_ = [
    '../_base_/datasets/fashion_mnist_mim.py',
    '../_base_/default_runtime.py',
]
img_size = 32
patch_size = 8
grid = img_size // patch_size
embed_dims = 96
head_dims = 96

model = dict(
    type='SIMPretrainer',
    base_momentum=0.99,
    mask_ratio=10 / 16,
    backbone=dict(
        type='MaskedViT',
        arch=dict(embed_dims=embed_dims, num_layers=4, num_heads=3,
                  feedforward_channels=embed_dims * 4),
        img_size=img_size,
        patch_size=patch_size,
        mask_mode='drop',
        pos_embed_type='sincos',
        sincos_layout='yx',
        frozen_patch_embed=True,
        final_norm=False),
    head=dict(
        type='SiameseDenseHead',
        in_channels=embed_dims,
        embed_dims=head_dims,
        grid_size=grid,
        num_heads=3,
        mlp_ratio=4.,
        projector_depth=1,
        predictor_depth=2,
        norm_cfg=dict(type='BN1d'),
        loss=dict(type='UniGradLoss', neg_weight=0.02, mode='dense')))

# grey images: brightness / contrast jitter, mild blur, solarize on view 2
jitter = dict(
    type='RandomApply',
    transforms=[dict(type='SIMColorJitter', brightness=0.4, contrast=0.4)],
    prob=0.8)
train_pipeline = [
    dict(
        type='SIMTwoViews',
        size=img_size,
        crop_ratio_range=(0.25, 1.0),
        interpolation='bicubic',
        backend='cv2',
        view1_pipeline=[
            jitter,
            dict(type='GaussianBlur', magnitude_range=(0.1, 1.0),
                 magnitude_std='inf', prob=0.5),
        ],
        view2_pipeline=[
            jitter,
            dict(type='GaussianBlur', magnitude_range=(0.1, 1.0),
                 magnitude_std='inf', prob=0.1),
            dict(type='Solarize', thr=128, prob=0.2),
        ]),
    dict(type='BlockwiseMaskGenerator', input_size=img_size,
         patch_size=patch_size, num_masking_patches=10, min_num_patches=2,
         exact_count=True),
    dict(type='PackInputs',
         algorithm_keys=['mask', 'crop_boxes', 'flips', 'img_width']),
]
train_dataloader = dict(
    batch_size=128,
    num_workers=2,
    dataset=dict(img_size=img_size, pipeline=train_pipeline))

max_iters = 1600
warmup_iters = 80
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1.5e-3, betas=(0.9, 0.95),
                   weight_decay=0.05),
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(
        norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='CosineAnnealingLR', T_max=max_iters - warmup_iters,
         eta_min=1e-5, by_epoch=False, begin=warmup_iters, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
custom_hooks = [dict(type='SIMMomentumHook')]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=max_iters, by_epoch=False,
                    max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
