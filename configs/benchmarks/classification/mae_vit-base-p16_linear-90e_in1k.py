# MAE ViT-B/16 linear probe: frozen encoder, cls token after the final norm,
# BatchNorm1d (no affine, eps 1e-6) + Linear (trunc-normal 0.01), LARS,
# lr 0.1 x 16384/256, 90 epochs (10 warm-up), no weight decay.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32_pil_resize.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmmim'], allow_failed_imports=False)

train_dataloader = dict(batch_size=2048, drop_last=True)
val_dataloader = dict(drop_last=False)
test_dataloader = dict(drop_last=False)

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
                   momentum=0.9))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0,
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
