# SIM ViT-B/16, 1600 epochs, the reference recipe
# (OpenGVLab/Siamese-Image-Modeling, configs/pretrain/dist_sim_base_1600ep.sh):
# - total batch 4096 (:14; 8 GPUs x 512 here), 1600 epochs (:17), 40 warm-up
#   epochs (:25), base lr 6.25e-5 x 4096 / 256 = 1e-3 and wd 0.05 (:29),
#   grad clip 1.0 (:32), fp16 (main_pretrain.py:299);
# - AdamW (0.9, beta2 0.95) with timm's param_groups_weight_decay: no decay for
#   1-D params and biases only (main_pretrain.py:139,296-297);
# - two views with crop geometry, crop scale 0.08-1 (:26), block-wise mask of
#   exactly 118 patches on view 1 (:27-28), momentum 0.995 -> 1 on a cosine of
#   the fractional epoch (:30-31, engine_pretrain.py:58-59), dense UniGrad with
#   lambda 0.02 (:33-34), predictor width 768 (:22); checkpoints every 5 epochs
#   (:35).
_base_ = [
    '../_base_/datasets/imagenet_mae.py',
    '../_base_/schedules/adamw_cosine_mae.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='SIMPretrainer',
    base_momentum=0.995,
    backbone=dict(
        type='MaskedViT',
        arch='base',
        img_size=224,
        patch_size=16,
        mask_mode='drop',
        pos_embed_type='sincos',
        sincos_layout='yx',
        frozen_patch_embed=True,
        final_norm=False),
    head=dict(
        type='SiameseDenseHead',
        in_channels=768,
        embed_dims=768,
        grid_size=14,
        num_heads=16,
        mlp_ratio=4.,
        projector_depth=2,
        predictor_depth=4,
        # BatchNorm over tokens, synchronised across processes as in the
        # reference (torch's SyncBN on GPU, an all-reduce on CPU / gloo);
        # plain BatchNorm when not distributed
        norm_cfg=dict(type='PortableSyncBN'),
        loss=dict(type='UniGradLoss', neg_weight=0.02, mode='dense'),
        target_norm_eps=1e-5))

train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(
        type='SIMTwoViews',
        size=224,
        crop_ratio_range=(0.08, 1.0),
        interpolation='bicubic',
        backend='pillow'),
    dict(type='BlockwiseMaskGenerator', input_size=224, patch_size=16,
         num_masking_patches=118, min_num_patches=16, min_aspect=0.3,
         exact_count=True),
    dict(type='PackInputs',
         algorithm_keys=['mask', 'crop_boxes', 'flips', 'img_width']),
]
train_dataloader = dict(batch_size=512, dataset=dict(pipeline=train_pipeline))

# MAE's optimiser and weight-decay rule (the base) with SIM's base lr and
# gradient clipping
base_lr = 6.25e-5
optim_wrapper = dict(
    optimizer=dict(lr=base_lr * 4096 / 256), clip_grad=dict(max_norm=1.0))

train_cfg = dict(max_epochs=1600)
# momentum m(t) = 1 - (1 + cos(pi t / E)) (1 - 0.995) / 2 from the runner's
# progress, applied before each target pass
custom_hooks = [dict(type='SIMMomentumHook')]
# the reference saves every 5 epochs
default_hooks = dict(checkpoint=dict(interval=5))
