# iTPN HiViT-B with a frozen CLIP ViT-B/16 teacher (masked feature modeling),
# 800 epochs, the reference recipe: relative position bias, learnable pos,
# layer scale 0.1, drop-path 0.1, fpn_depth 1, BEiT block-wise mask of 75
# patches (min block 16, not topped up), mask token after the stem, main +
# auxiliary (after 19 main blocks) outputs, SmoothL1 over all tokens; AdamW
# lr 1.5e-3 (absolute), betas (0.9, 0.98), wd 0.05, 5 warm-up epochs, cosine
# to 1e-5, total batch 2048, fp16.
# The teacher is built from a local CLIP checkpoint (OpenAI layout, e.g.
# ViT-B-16.pt): pass its path, e.g.
#   tools/dist_train.sh configs/itpn/itpn-base_clip_800e.py 8 \
#       --cfg-options model.target_generator.checkpoint=/path/ViT-B-16.pt
_base_ = [
    '../_base_/datasets/imagenet_mae.py',
    '../_base_/default_runtime.py',
]

img_size = 224
patch_size = 16
clip_checkpoint = 'checkpoints/clip/ViT-B-16.pt'
model = dict(
    type='iTPNCLIPPretrainer',
    # the reference keeps main block int(0.75 * 24) counted from 0, i.e. the
    # output after 19 blocks (itpn_clip/modeling_pretrain.py:255)
    early_layers=19,
    backbone=dict(
        type='iTPNBackbone',
        arch='base',
        img_size=img_size,
        patch_size=patch_size,
        mask_mode='token',
        use_rel_pos_bias=True,
        pos_embed_learnable=True,
        pos_embed_init='trunc_normal',
        layer_scale_init_value=0.1,
        drop_path_rate=0.1),  # no BEiT-style rescaling in the reference
    neck=dict(
        type='iTPNPyramidNeck',
        in_channels=512,
        fpn_dim=256,
        fpn_depth=1,
        out_mode='tokens'),
    head=dict(
        type='iTPNCLIPHead',
        embed_dim=512,
        fpn_dim=256,
        target_dim=512,
        num_aux_layers=2,
        num_heads=8,
        grid_size=img_size // patch_size,
        use_rel_pos_bias=True,
        layer_scale_init_value=0.1),
    target_generator=dict(
        type='iTPNCLIPTeacher',
        checkpoint=clip_checkpoint))

train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(
        type='RandomResizedCrop',
        scale=img_size,
        crop_ratio_range=(0.2, 1.0),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='BlockwiseMaskGenerator', input_size=img_size,
         patch_size=patch_size, num_masking_patches=75, min_num_patches=16,
         exact_count=False),
    dict(type='PackInputs', algorithm_keys=['mask']),
]
train_dataloader = dict(batch_size=256, dataset=dict(pipeline=train_pipeline))

optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(type='AdamW', lr=1.5e-3, betas=(0.9, 0.98),
                   weight_decay=0.05),
    clip_grad=dict(max_norm=3.0),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={
            'pos_embed': dict(decay_mult=0.),
            'mask_token': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
        }))

warmup_epochs = 5
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True,
         begin=warmup_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=800)
auto_scale_lr = dict(base_batch_size=2048)
