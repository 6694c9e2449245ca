# UperNet with a pre-trained plain ViT-B/16 (MAE / HPM / SIM encoders) on
# ADE20K, 512 x 512 crops, 160k iterations, slide inference (stride 341).
# mmseg's Feature2Pyramid turns the outputs of blocks 4, 6, 8, 12 into
# strides 4, 8, 16, 32. Runs in mmseg's scope; mmmim parts are
# `mmpretrain.<Name>`.
#   tools/dist_train.sh configs/benchmarks/upernet/<this file> 8 \
#     --cfg-options model.backbone.init_cfg.checkpoint=<pre-training ckpt>
# Recipe (MAE): AdamW lr 1e-4, wd 0.05, layer decay 0.65, drop-path 0.1.
_base_ = [
    'mmseg::_base_/models/upernet_mae.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]
custom_imports = dict(imports=['mmmim'], allow_failed_imports=False)

crop_size = (512, 512)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='mmpretrain.MaskedViT',
        arch='base',
        img_size=512,
        patch_size=16,
        drop_path_rate=0.1,
        pos_embed_type='learnable',  # loaded from the checkpoint, then tuned
        out_indices=(3, 5, 7, 11),
        final_norm=False,
        out_type='featmap',
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=dict(
        type='Feature2Pyramid', embed_dim=768, rescales=[4, 2, 1, 0.5],
        norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=[768, 768, 768, 768], channels=768, num_classes=150,
        norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=768, num_classes=150, norm_cfg=norm_cfg),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999),
                   weight_decay=0.05),
    constructor='MIMLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.65))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
         end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=160000,
         by_epoch=False),
]
train_dataloader = dict(batch_size=2)  # x 8 GPUs = 16
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
