# MAE ViT-B/16 ImageNet fine-tuning, the reference recipe
# (facebookresearch/mae, FINETUNE.md:65-77 and main_finetune.py defaults):
# - total batch 1024 = 4 nodes x 8 GPUs x 32 (FINETUNE.md:67-68,77; 8 GPUs x
#   128 here), lr 5e-4 x 1024 / 256 (:72,78), 100 epochs (:71), layer decay
#   0.65 (:72), wd 0.05, drop path 0.1, random erasing 0.25 (pixel mode),
#   mixup 0.8, cutmix 1.0 (:73);
# - 5 warm-up epochs, cosine to min lr 1e-6 (main_finetune.py:73,76), AdamW
#   with torch's betas (0.9, 0.999) (:287), fp16 (:288), no grad clipping
#   (:61); RandAugment rand-m9-mstd0.5-inc1 (:82), label smoothing 0.1 (:84),
#   mixup / cutmix switch 0.5 (:106);
# - mean-pooled patch tokens + fc_norm + linear head, head weights
#   trunc-normal(2e-5) (:115,257); layer ids 0 (patch embed, cls, pos),
#   i + 1 (block i), depth + 1 (the rest), no decay for 1-D params, pos_embed
#   and cls_token (util/lr_decay.py:23-32,64-76);
# - eval: Resize(256, bicubic) + CenterCrop(224) (util/datasets.py:52-62).
# The backbone loads straight from an mmmim pre-training checkpoint:
#   --cfg-options \
#       model.backbone.init_cfg.checkpoint=work_dirs/.../epoch_1600.pth
# (the final norm `ln1` of pre-training is reported as unexpected, the new
# fc_norm `ln2` as missing: both by design).
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmmim'], allow_failed_imports=False)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2,
         total_level=10, magnitude_level=9, magnitude_std=0.5,
         hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand',
         min_area_ratio=0.02, max_area_ratio=1 / 3,
         fill_color=[103.53, 116.28, 123.675],
         fill_std=[57.375, 57.12, 58.395]),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=128, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=128, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='MaskedViT',
        arch='base',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.1,
        pos_embed_type='learnable',  # loaded from the checkpoint, then tuned
        final_norm=False,  # fc_norm after mean pooling instead
        out_type='avg_featmap',
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1,
                  mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)]),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0)
    ]))

# lr = 5e-4 x total batch / 256 (8 GPUs x 128 = 1024 -> 2e-3)
optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-4 * 1024 / 256, weight_decay=0.05,
                   betas=(0.9, 0.999)),
    constructor='MIMLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.65))

# warm-up, then cosine to the end of training (train_cfg.max_epochs)
# warm-up from 0, lr reached at its end (util/lr_sched.py:9-16)
param_scheduler = [
    dict(type='LinearWarmupLR', start_factor=0., by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    # the floor scaled by each group's layer decay like its lr
    # (lr_sched.py:14-18)
    dict(type='LayerDecayCosineAnnealingLR', by_epoch=True, begin=5,
         eta_min=1e-6, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=100)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=1024)
randomness = dict(seed=0, diff_rank_seed=True)
