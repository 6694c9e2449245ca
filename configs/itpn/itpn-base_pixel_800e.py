# iTPN HiViT-B, pixel targets, 800 epochs: the reference recipe
# (sunsmarterjie/iTPN, itpn_pixel/PRETRAIN.md:8-15 with --epochs 800):
# - total batch 4096 = 8 nodes x 8 GPUs x 64 (:8,10; 8 GPUs x 512 here,
#   --auto-scale-lr rescales the lr), base lr 1.5e-4 x 4096 / 256 (:12,
#   main_pretrain.py:165), mask ratio 0.75 (:13), 40 warm-up epochs (:14);
# - MAE's optimiser, schedule and weight-decay rule (timm add_weight_decay:
#   the learnable position table and the mask token ARE decayed,
#   main_pretrain.py:178-179): ../_base_/schedules/adamw_cosine_mae.py;
# - RandomResizedCrop(224, 0.2-1, bicubic) + flip (main_pretrain.py:124-125).
#   tools/dist_train.sh configs/itpn/itpn-base_pixel_800e.py 8
_base_ = [
    '../_base_/datasets/imagenet_mae.py',
    '../_base_/schedules/adamw_cosine_mae.py',
    '../_base_/default_runtime.py',
]

img_size = 224
patch_size = 16
model = dict(
    type='iTPNPretrainer',
    mask_ratio=0.75,  # used only when the pipeline gives no mask
    backbone=dict(
        type='iTPNBackbone',
        arch='base',  # 3 + 3 MLP blocks, 24 attention blocks, width 512
        img_size=img_size,
        patch_size=patch_size,
        mask_mode='drop',  # masked patches dropped before the stem
        use_rel_pos_bias=False,
        pos_embed_learnable=True,  # sin-cos initialised, trained (reference)
        drop_path_rate=0.0),
    neck=dict(
        type='iTPNPyramidNeck',
        in_channels=512,
        fpn_dim=256,
        fpn_depth=2,
        out_mode='tokens'),
    decoder=dict(
        type='iTPNPixelDecoder',
        num_patches=(img_size // patch_size)**2,
        patch_size=patch_size,
        fpn_dim=256,
        embed_dim=512,
        depth=8,
        num_heads=16),
    head=dict(
        type='iTPNPixelHead',
        norm_pix=True,  # the reference always normalises target pixels
        patch_size=patch_size,
        loss=dict(type='PixelReconstructionLoss', criterion='L2')))

train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(
        type='RandomResizedCrop',
        scale=img_size,
        crop_ratio_range=(0.2, 1.0),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomMaskGenerator', input_size=img_size,
         patch_size=patch_size, mask_ratio=0.75),
    dict(type='PackInputs', algorithm_keys=['mask']),
]
train_dataloader = dict(batch_size=512, dataset=dict(pipeline=train_pipeline))
