# SimMIM Swin-B, 192 px, window 6, 800 epochs: the reference's main setting
# (/work/refs/SimMIM configs/swin_base__800ep/
# simmim_pretrain__swin_base__img192_window6__800ep.yaml, config.py defaults,
# main_simmim.py:218 lr scaling, optimizer.py:21-67, models/simmim.py:19-52
# and 91-113, data/data_simmim.py:50-56).
# mmpretrain's SimMIMSwinTransformer (Swin-B: 128 wide, depths 2-2-18-2,
# heads 4-8-16-32, patch 4, no absolute pos, drop path 0); linear decoder
# (1x1 conv 1024 -> 32*32*3 + PixelShuffle 32); masked L1 / (sum M + 1e-5) / 3.
# Total batch 2048 (16 GPUs x 128), AdamW (0.9, 0.999), eps 1e-8, wd 0.05,
# base lr 1e-4 x 2048 / 512, warm-up 10 epochs from 5e-7 (scaled the same),
# x0.1 at epoch 700, grad clip 5.0; RandomResizedCrop(192, 0.67-1,
# 3/4-4/3, bilinear: torchvision's default) + flip; 32-px mask blocks, 60 %
# masked (22 of the 6 x 6 blocks, each 8 x 8 of the 48 x 48 patches).
# 89,874,104 parameters, the reference's (tests/test_simmim_swin.py).
_base_ = [
    '../_base_/datasets/imagenet_mae.py',
    '../_base_/default_runtime.py',
]
img_size = 192
model = dict(
    type='SimMIMPretrainer',
    mask_ratio=0.6,
    backbone=dict(
        type='SimMIMSwinTransformer',
        arch='base',
        img_size=img_size,
        stage_cfgs=dict(block_cfgs=dict(window_size=6)),
        drop_path_rate=0.0,
        out_indices=(3, )),
    neck=dict(type='SimMIMLinearDecoder', in_channels=1024, encoder_stride=32),
    head=dict(
        type='SimMIMHead',
        patch_size=4,
        loss=dict(type='MaskedPixelL1Loss', channel=3, eps=1e-5)))

train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(
        type='RandomResizedCrop',
        scale=img_size,
        crop_ratio_range=(0.67, 1.0),
        aspect_ratio_range=(3. / 4., 4. / 3.),
        backend='pillow',
        interpolation='bilinear'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomMaskGenerator', input_size=img_size, patch_size=4,
         mask_patch_size=32, mask_ratio=0.6),
    dict(type='PackInputs', algorithm_keys=['mask']),
]
train_dataloader = dict(batch_size=128, dataset=dict(pipeline=train_pipeline))

base_lr = 1e-4 * 2048 / 512
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(
        type='AdamW', lr=base_lr, betas=(0.9, 0.999), eps=1e-8,
        weight_decay=0.05),
    clip_grad=dict(max_norm=5.0),
    # reference: 1-D parameters, biases and encoder.mask_token are not
    # decayed; its 'encoder.relative_position_bias_table' keyword never
    # matches a block's table, so the tables ARE decayed (quirk kept)
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={'mask_token': dict(decay_mult=0.)}))

max_epochs = 800
warmup_epochs = 10
param_scheduler = [
    # timm's warm-up from WARMUP_LR (lr_scheduler.py:_get_lr), reaching the
    # lr at the first step after it
    dict(type='LinearWarmupLR', start_factor=5e-7 / 1e-4, by_epoch=True,
         begin=0, end=warmup_epochs, convert_to_iter_based=True),
    # begin=0: mmengine counts milestones from `begin`; the reference decays
    # at epoch 700 of the run (multi_steps are absolute, lr_scheduler.py:22)
    dict(type='MultiStepLR', milestones=[700], gamma=0.1, by_epoch=True,
         begin=0, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=2048)
