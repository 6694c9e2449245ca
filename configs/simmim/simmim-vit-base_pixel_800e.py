# SimMIM ViT-B/16, 800 epochs, the reference recipe: total batch 2048
# (8 GPUs x 256), AdamW (0.9, 0.999), eps 1e-8, wd 0.05, base lr 1e-4 x 2048 / 512,
# 10 warm-up epochs from 5e-7 (scaled the same way), x0.1 at epoch 700,
# grad clip 5.0, RandomResizedCrop(224, 0.67-1, 3/4-4/3) + flip,
# 32-px mask blocks, 60% masked (120 of 196 patches).
_base_ = [
    '../_base_/models/simmim_vit-base-p16.py',
    '../_base_/datasets/imagenet_mae.py',
    '../_base_/default_runtime.py',
]

train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(
        type='RandomResizedCrop',
        scale=224,
        crop_ratio_range=(0.67, 1.0),
        aspect_ratio_range=(3. / 4., 4. / 3.),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomMaskGenerator', input_size=224, patch_size=16,
         mask_patch_size=32, mask_ratio=0.6),
    dict(type='PackInputs', algorithm_keys=['mask']),
]
train_dataloader = dict(batch_size=256, dataset=dict(pipeline=train_pipeline))

base_lr = 1e-4 * 2048 / 512
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(
        type='AdamW', lr=base_lr, betas=(0.9, 0.999), eps=1e-8,
        weight_decay=0.05),
    clip_grad=dict(max_norm=5.0),
    # reference quirk: mask_token and the shared bias table ARE decayed
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={
            'pos_embed': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
        }))

max_epochs = 800
warmup_epochs = 10
param_scheduler = [
    dict(type='LinearLR', start_factor=5e-7 / 1e-4, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='MultiStepLR', milestones=[700], gamma=0.1, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=2048)
