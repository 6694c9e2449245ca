# SimMIM Swin-B fine-tuning at 224 px, window 7, from the 192 px / window 6
# pre-training (/work/refs/SimMIM configs/swin_base__800ep/
# simmim_finetune__swin_base__img224_window7__800ep.yaml, config.py defaults,
# main_finetune.py:322-333 lr scaling, optimizer.py:70-160 layer decay,
# utils.py:98-205 loading, data/data_finetune.py).
# The backbone loads the pre-training checkpoint with the reference's rules
# (FinetuneSwinTransformer): relative position tables resized 11^2 -> 13^2
# rows by its geometric bicubic interpolation, pre-training's mask_token
# dropped, nothing else missing or unexpected:
#   --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/.../epoch_800.pth
# Total batch 2048 (16 x 128), AdamW (0.9, 0.999), eps 1e-8, wd 0.05, base lr
# 1.25e-3 x 2048 / 512, 20 warm-up epochs from 2.5e-7 (scaled), cosine to
# 2.5e-7 (scaled), 100 epochs, layer decay 0.8 (mmpretrain's Swin layer ids =
# the reference's get_swin_layer), drop path 0.1, grad clip 5.0, label
# smoothing 0.1, RandAugment m9 (mstd 0.5), random erasing 0.25, mixup 0.8,
# cutmix 1.0; test: resize 256 + centre crop 224.
_base_ = './mae_vit-base-p16_ft-100e_in1k.py'
img_size = 224
model = dict(
    backbone=dict(
        _delete_=True,
        type='FinetuneSwinTransformer',
        arch='base',
        img_size=img_size,
        stage_cfgs=dict(block_cfgs=dict(window_size=7)),
        drop_path_rate=0.1,
        out_indices=(3, ),
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=dict(_delete_=True, type='GlobalAveragePooling'),
    head=dict(in_channels=1024,
              init_cfg=[dict(type='TruncNormal', layer='Linear', std=.02)]))

# augmentation, mixup / cutmix and test pipeline: the base config's, which
# equal the reference's timm create_transform (old timm applies no colour
# jitter when RandAugment is on)
total_batch = 2048
optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(type='AdamW', lr=1.25e-3 * total_batch / 512,
                   weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=5.0),
    paramwise_cfg=dict(layer_decay_rate=0.8))
param_scheduler = [
    dict(type='LinearLR', start_factor=2.5e-7 / 1.25e-3, by_epoch=True,
         begin=0, end=20, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=80, by_epoch=True, begin=20,
         end=100, eta_min=2.5e-7 * total_batch / 512,
         convert_to_iter_based=True),
]
auto_scale_lr = dict(base_batch_size=total_batch)
