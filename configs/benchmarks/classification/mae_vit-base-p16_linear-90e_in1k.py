# MAE ViT-B/16 linear probe, the reference recipe (facebookresearch/mae,
# FINETUNE.md:139-150, main_linprobe.py):
# - total batch 16384 = 4 nodes x 8 GPUs x 512 (FINETUNE.md:141-142,150; 8
#   GPUs x 2048 here, drop_last as main_linprobe.py:178), lr 0.1 x 16384 /
#   256 (:146,151), wd 0 (:147), 90 epochs (:145), 10 warm-up epochs and a
#   cosine to 0 (main_linprobe.py:63,66);
# - frozen encoder, cls token after the final norm (--cls_token, :143),
#   BatchNorm1d (no affine, eps 1e-6) + Linear with trunc-normal(0.01)
#   weights (main_linprobe.py:218,222); LARS with momentum 0.9, trust
#   coefficient 1e-3, and no LARS adaptation (or decay) for 1-D parameters,
#   i.e. the head's bias (util/lars.py:18,31-40; lars_exclude here);
# - RandomResizedCrop(224, bicubic) with MAE's single-draw crop sampler
#   (util/crop.py:15-42) + flip; eval Resize(256, bicubic) + CenterCrop(224)
#   (main_linprobe.py:132-141).
# Kept deviation: mmpretrain's LARS multiplies the lr into its momentum
# buffer, the reference applies it after (util/lars.py:45-47); the two differ
# only while the lr changes (warm-up / cosine), by the per-iteration lr change.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32_pil_resize.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmmim'], allow_failed_imports=False)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SingleDrawRandomResizedCrop', scale=224, backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=2048, drop_last=True, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(drop_last=False, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='MaskedViT',
        arch='base',
        img_size=224,
        patch_size=16,
        frozen_stages=12,  # every block + patch embed + final norm
        final_norm=True,
        out_type='cls_token',
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=dict(type='ClsBatchNormNeck', input_features=768, affine=False,
              eps=1e-6),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(type='CrossEntropyLoss'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.01)]))

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    optimizer=dict(type='LARS', lr=0.1 * 16384 / 256, weight_decay=0.0,
                   momentum=0.9),
    # no trust-ratio scaling for 1-D parameters (the head's bias)
    paramwise_cfg=dict(custom_keys={'bias': dict(lars_exclude=True)}))
# warm-up from 0, lr reached at its end (util/lr_sched.py:9-16)
param_scheduler = [
    dict(type='LinearWarmupLR', start_factor=0., by_epoch=True, begin=0,
         end=10, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=10, eta_min=0.0,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=90)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    logger=dict(type='LoggerHook', interval=10))
auto_scale_lr = dict(base_batch_size=16384)
randomness = dict(seed=0, diff_rank_seed=True)
