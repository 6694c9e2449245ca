# SIM ViT-B/16, 1600 epochs, the reference recipe (METHODS.md s.4): total batch
# 4096 (8 GPUs x 512 here; lr scales with the real total batch via
# --auto-scale-lr), AdamW (0.9, 0.95), wd 0.05 (not on 1-D params / biases),
# base lr 6.25e-5 x 4096 / 256 = 1e-3, 40 warm-up epochs, cosine, grad clip 1.0,
# fp16; two views with crop geometry, block-wise mask of exactly 118 patches on
# view 1, momentum 0.995 -> 1 (cosine), dense UniGrad (lambda 0.02).
_base_ = [
    '../_base_/datasets/imagenet_mae.py',
    '../_base_/schedules/adamw_cosine_mae.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='SIMPretrainer',
    base_momentum=0.995,
    backbone=dict(
        type='MaskedViT',
        arch='base',
        img_size=224,
        patch_size=16,
        mask_mode='drop',
        pos_embed_type='sincos',
        sincos_layout='yx',
        frozen_patch_embed=True,
        final_norm=False),
    head=dict(
        type='SiameseDenseHead',
        in_channels=768,
        embed_dims=768,
        grid_size=14,
        num_heads=16,
        mlp_ratio=4.,
        projector_depth=2,
        predictor_depth=4,
        # BatchNorm over tokens, synchronised across processes as in the
        # reference (torch's SyncBN on GPU, an all-reduce on CPU / gloo);
        # plain BatchNorm when not distributed
        norm_cfg=dict(type='PortableSyncBN'),
        loss=dict(type='UniGradLoss', neg_weight=0.02, mode='dense'),
        target_norm_eps=1e-5))

train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(
        type='SIMTwoViews',
        size=224,
        crop_ratio_range=(0.08, 1.0),
        interpolation='bicubic',
        backend='pillow'),
    dict(type='BlockwiseMaskGenerator', input_size=224, patch_size=16,
         num_masking_patches=118, min_num_patches=16, min_aspect=0.3,
         exact_count=True),
    dict(type='PackInputs',
         algorithm_keys=['mask', 'crop_boxes', 'flips', 'img_width']),
]
train_dataloader = dict(batch_size=512, dataset=dict(pipeline=train_pipeline))

base_lr = 6.25e-5
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(
        type='AdamW', lr=base_lr * 4096 / 256, betas=(0.9, 0.95),
        weight_decay=0.05),
    clip_grad=dict(max_norm=1.0),
    # timm's rule as in the reference: no decay on 1-D params and biases
    # (the cls / mask tokens are decayed)
    paramwise_cfg=dict(
        _delete_=True,
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0))

train_cfg = dict(max_epochs=1600)
# momentum m(t) = 1 - (1 + cos(pi t / E)) (1 - 0.995) / 2 from the runner's
# progress, applied before each target pass
custom_hooks = [dict(type='SIMMomentumHook')]
# the reference saves every 5 epochs
default_hooks = dict(checkpoint=dict(interval=5))
