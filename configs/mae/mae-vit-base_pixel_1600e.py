# MAE ViT-B/16, 1600 epochs, the reference recipe: total batch 4096
# (8 GPUs x 512 here; lr scales with the real total batch via --auto-scale-lr),
# AdamW (0.9, 0.95), wd 0.05, base lr 1.5e-4 x 4096 / 256, 40 warm-up epochs,
# cosine, RandomResizedCrop(224, 0.2-1, bicubic) + flip, norm_pix, fp16.
_base_ = [
    '../_base_/models/mae_vit-base-p16.py',
    '../_base_/datasets/imagenet_mae.py',
    '../_base_/schedules/adamw_cosine_mae.py',
    '../_base_/default_runtime.py',
]

train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(
        type='RandomResizedCrop',
        scale=224,
        crop_ratio_range=(0.2, 1.0),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    # the mask is drawn in the data workers (exactly 147 of 196 patches)
    dict(type='RandomMaskGenerator', input_size=224, patch_size=16,
         mask_ratio=0.75),
    dict(type='PackInputs', algorithm_keys=['mask']),
]
train_dataloader = dict(batch_size=512, dataset=dict(pipeline=train_pipeline))

train_cfg = dict(max_epochs=1600)
