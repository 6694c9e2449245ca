# MAE ViT-B/16, 1600 epochs, the reference recipe (facebookresearch/mae):
# - total batch 4096 (PRETRAIN.md:9,18; 8 GPUs x 512 here, --auto-scale-lr
#   rescales the lr for another total), base lr 1.5e-4 x 4096 / 256
#   (PRETRAIN.md:15, main_pretrain.py:166), 40 warm-up epochs (PRETRAIN.md:14);
# - 1600 epochs with norm_pix: the released checkpoints (FINETUNE.md:129);
# - mask ratio 0.75 (PRETRAIN.md:12), RandomResizedCrop(224, 0.2-1, bicubic)
#   + flip (main_pretrain.py:124-125);
# - optimiser, weight-decay rule and schedule:
#   ../_base_/schedules/adamw_cosine_mae.py.
# Recipe table and checks: docs/recipes.md.
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
