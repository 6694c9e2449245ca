# Texture-guided hard patch mining on HOG targets, Fashion-MNIST demo size
# (the tiny ViT of configs/demo/mae_fashion-mnist.py). Run from the repo root:
#   PYTHONPATH=. python tools/train.py \
#       projects/hpm_hog/configs/hog-hpm_vit-tiny_fashion-mnist.py
_base_ = [
    '../../../configs/_base_/datasets/fashion_mnist_mim.py',
    '../../../configs/_base_/default_runtime.py',
]
# mmmim first, then the project's module: registers HOGHardPatchPretrainer
# and HOGReconstructionHead
custom_imports = dict(
    imports=['mmmim', 'projects.hpm_hog.hpm_hog'],
    allow_failed_imports=False)

img_size = 32
patch_size = 8  # two 4-px HOG cells per side -> 3 * 9 * 4 = 108 values
num_patches = (img_size // patch_size)**2
hog_dim = 3 * 9 * (patch_size // 4)**2

model = dict(
    type='HOGHardPatchPretrainer',
    mask_ratio=0.75,
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[72.94, 72.94, 72.94],
        std=[90.02, 90.02, 90.02],
        to_rgb=False),
    backbone=dict(
        type='MaskedViT',
        arch=dict(embed_dims=192, num_layers=6, num_heads=6,
                  feedforward_channels=768),
        img_size=img_size,
        patch_size=patch_size),
    neck=dict(
        type='MAEDecoder',
        num_patches=num_patches,
        patch_size=patch_size,
        embed_dim=192,
        decoder_embed_dim=128,
        decoder_depth=2,
        decoder_num_heads=4,
        predict_feature_dim=hog_dim),
    head=dict(type='HOGReconstructionHead', patch_size=patch_size, nbins=9,
              pool=4, gaussian_window=img_size),
    # only the easy-to-hard schedule and the mask of HPMTarget are used
    target_generator=dict(type='HPMTarget', hard_ratio=0.5, by_iter=True))

train_dataloader = dict(batch_size=128, num_workers=2,
                        dataset=dict(img_size=img_size))
max_iters = 600
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1.5e-3, betas=(0.9, 0.95),
                   weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       flat_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', T_max=max_iters - 50, eta_min=1e-5,
         by_epoch=False, begin=50, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25),
    checkpoint=dict(type='CheckpointHook', interval=max_iters, by_epoch=False,
                    max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
