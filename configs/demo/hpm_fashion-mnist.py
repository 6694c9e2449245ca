# About 8 minutes (14 CPU minutes) of HPM on Fashion-MNIST: the tiny ViT,
# data and schedule of configs/demo/mae_fashion-mnist.py (32 px, patch 4,
# 128 wide, 4 deep, decoder 2 x 96, batch 128, 800 iterations), plus the loss
# predictor (2 x 96, like the reconstruction decoder) and the EMA teacher
# that mines hard patches. The README's main command runs it:
#   bash tools/run_demo.sh
# The run is iteration-based, so the easy-to-hard ramp and the momentum ramp
# are per iteration (by_iter=True), and the momentum is lower than ImageNet's
# (0.98 -> 0.995 over the first quarter) so the teacher follows a short run.
#   python tools/train.py configs/demo/hpm_fashion-mnist.py --work-dir work_dirs/hpm_demo
#   python tools/analysis/evaluate_representation.py configs/demo/hpm_fashion-mnist.py \
#       --checkpoint work_dirs/hpm_demo/iter_800.pth --compare-random-init
_base_ = [
    '../_base_/datasets/fashion_mnist_mim.py',
    '../_base_/default_runtime.py',
]
img_size = 32
patch_size = 4
num_patches = (img_size // patch_size)**2
embed_dims = 128
decoder_dims = 96

model = dict(
    type='HPMPretrainer',
    mask_ratio=0.75,
    target='pixel',
    backbone=dict(
        type='MaskedViT',
        arch=dict(embed_dims=embed_dims, num_layers=4, num_heads=4,
                  feedforward_channels=embed_dims * 4),
        img_size=img_size,
        patch_size=patch_size),
    neck=dict(
        type='MAEDecoder',
        num_patches=num_patches,
        patch_size=patch_size,
        in_chans=3,
        embed_dim=embed_dims,
        decoder_embed_dim=decoder_dims,
        decoder_depth=2,
        decoder_num_heads=4),
    head=dict(
        type='MAEPretrainHead',
        norm_pix=False,
        patch_size=patch_size,
        loss=dict(type='PixelReconstructionLoss', criterion='L2')),
    loss_predictor=dict(
        type='LossPredictorHead',
        embed_dims=decoder_dims,
        depth=2,
        num_heads=4,
        out_channels=patch_size * patch_size * 3,
        loss=dict(type='HPMRelativeLoss')),
    target_generator=dict(
        type='HPMTarget',
        by_iter=True,
        base_momentum=0.98,
        final_momentum=0.995,
        momentum_warmup=200))
custom_hooks = [dict(type='HPMTeacherHook')]

# no MaskGenerator: the teacher makes the masks
train_pipeline = [
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.5, 1.0),
         backend='cv2', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
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
    checkpoint=dict(type='CheckpointHook', interval=200, by_epoch=False,
                    max_keep_ckpts=4))
log_processor = dict(by_epoch=False)
