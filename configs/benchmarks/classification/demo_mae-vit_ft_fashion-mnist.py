# Fine-tuning the demo MAE encoder (configs/demo/mae_fashion-mnist.py: ViT
# 128 wide, 4 blocks, 32 px, patch 4) on Fashion-MNIST classification, with
# the ImageNet protocol scaled down: mean pooling + fc_norm + linear head,
# AdamW, layer decay 0.75, warm-up + cosine, drop-path 0.1, label smoothing.
# tools/transfer_demo.py runs it from the pre-training checkpoint and from
# scratch with the same budget.
#   python tools/train.py configs/benchmarks/classification/<this file> \
#     --cfg-options model.backbone.init_cfg.checkpoint=<demo ckpt>
default_scope = 'mmpretrain'
custom_imports = dict(imports=['mmmim'], allow_failed_imports=False)
_base_ = ['../../_base_/default_runtime.py']

img_size = 32
embed_dims = 128
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        num_classes=10, mean=[72.94] * 3, std=[90.02] * 3, to_rgb=False),
    backbone=dict(
        type='MaskedViT',
        arch=dict(embed_dims=embed_dims, num_layers=4, num_heads=4,
                  feedforward_channels=embed_dims * 4),
        img_size=img_size,
        patch_size=4,
        drop_path_rate=0.1,
        pos_embed_type='learnable',
        final_norm=False,
        out_type='avg_featmap',
        init_cfg=dict(type='Pretrained',
                      checkpoint='work_dirs/demo_mae/iter_800.pth',
                      prefix='backbone.')),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=embed_dims,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1,
                  mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)]))

train_pipeline = [
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.6, 1.),
         backend='cv2', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=128,
    num_workers=1,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='FashionMNISTIDX', split='train', img_size=img_size,
                 num_samples=10000, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=256,
    num_workers=1,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='FashionMNISTIDX', split='test', img_size=img_size,
                 num_samples=2000, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

max_iters = 300
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999),
                   weight_decay=0.05),
    constructor='MIMLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.75))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=30),
    dict(type='CosineAnnealingLR', T_max=max_iters - 30, eta_min=1e-6,
         by_epoch=False, begin=30, end=max_iters),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
