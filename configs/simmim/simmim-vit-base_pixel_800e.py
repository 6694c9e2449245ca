# SimMIM ViT-B/16, 800 epochs, the reference recipe (microsoft/SimMIM,
# configs/vit_base__800ep/simmim_pretrain__vit_base__img224__800ep.yaml):
# - ViT-B/16 without absolute position table, shared relative position bias,
#   drop path 0.1 (yaml:4-12), layer scale 0.1 (config.py:84);
# - total batch 2048: 128 per GPU (config.py:23) on 16 GPUs
#   (README.md:119-120);
#   8 GPUs x 256 here;
# - AdamW (0.9, 0.999), eps 1e-8 (config.py:127-129), wd 0.05 (yaml:22); no
#   decay for 1-D params, biases, pos_embed and cls_token only, so the mask
#   token and the shared bias table ARE decayed (optimizer.py:54-56,
#   models/vision_transformer.py:298-299);
# - lr 1e-4 x 2048 / 512, warm-up 10 epochs from 5e-7 x 2048 / 512
#   (yaml:19-21, main_simmim.py:218-219), x0.1 at epoch 700 of 800
#   (yaml:18,23-26, lr_scheduler.py:137-140); grad clip 5.0 (config.py:102);
#   apex O1 fp16 (main_simmim.py:78); checkpoints every 5 epochs (yaml:28);
# - RandomResizedCrop(224, 0.67-1, 3/4-4/3) with torchvision's default
#   BILINEAR interpolation + flip (data/data_simmim.py:52-53); 32-px mask
#   blocks, 60 % masked (yaml:15-16).
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
        interpolation='bilinear'),
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

warmup_epochs = 10
param_scheduler = [
    # timm's warm-up from WARMUP_LR (lr_scheduler.py:_get_lr), reaching the
    # lr at the first step after it
    dict(type='LinearWarmupLR', start_factor=5e-7 / 1e-4, by_epoch=True,
         begin=0, end=warmup_epochs, convert_to_iter_based=True),
    # begin=0: mmengine counts milestones from `begin`, the decay is at
    # epoch 700 of the run
    dict(type='MultiStepLR', milestones=[700], gamma=0.1, by_epoch=True,
         begin=0, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=800)
auto_scale_lr = dict(base_batch_size=2048)
default_hooks = dict(checkpoint=dict(interval=5))
