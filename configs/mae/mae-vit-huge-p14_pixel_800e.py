# MAE ViT-H/14, 800 epochs: the ViT-L script with --model
# mae_vit_huge_patch14 (mae PRETRAIN.md:24): encoder 1280 wide, 32 blocks,
# 16 heads, 14 px patches (16 x 16 grid at 224, 192 of 256 patches masked),
# decoder 512 x 8, 16 heads (models_mae.py:239-244); norm_pix targets of
# 14 x 14 x 3 values per patch.
_base_ = './mae-vit-large_pixel_800e.py'

patch_size = 14
model = dict(
    backbone=dict(arch='huge', patch_size=patch_size),
    neck=dict(embed_dim=1280, num_patches=(224 // patch_size)**2,
              patch_size=patch_size),
    head=dict(patch_size=patch_size))

train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(
        type='RandomResizedCrop',
        scale=224,
        crop_ratio_range=(0.2, 1.0),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomMaskGenerator', input_size=224, patch_size=patch_size,
         mask_ratio=0.75),
    dict(type='PackInputs', algorithm_keys=['mask']),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
