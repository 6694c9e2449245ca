# Mask R-CNN with a pre-trained plain ViT-B/16 (MAE / HPM / SIM encoders) and
# ViTDet's simple feature pyramid (mmmim's SimpleFeaturePyramid: strides
# 4-64 from the stride-16 map, 256 channels), COCO 1x.
# Runs in mmdet's scope; mmmim parts are `mmpretrain.<Name>`.
#   tools/dist_train.sh configs/benchmarks/mask_rcnn/<this file> 8 \
#     --cfg-options model.backbone.init_cfg.checkpoint=<pre-training ckpt>
# Recipe (ViTDet, ViT-B): AdamW lr 1e-4, wd 0.1, layer decay 0.7, drop-path
# 0.1; 4conv1fc box head and mask head with GN. Global attention in every
# block (no window attention), pos embed interpolated to each input.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmmim'], allow_failed_imports=False)

norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='mmpretrain.MaskedViT',
        arch='base',
        img_size=1024,
        patch_size=16,
        drop_path_rate=0.1,
        pos_embed_type='learnable',  # loaded from the checkpoint, then tuned
        out_indices=(11, ),
        final_norm=False,
        out_type='featmap',
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=dict(
        _delete_=True,
        type='mmpretrain.SimpleFeaturePyramid',
        in_channels=768,
        out_channels=256,
        scale_factors=(4.0, 2.0, 1.0, 0.5),
        num_outs=5),
    rpn_head=dict(num_convs=2),
    roi_head=dict(
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead',
            conv_out_channels=256,
            norm_cfg=norm_cfg,
            reg_decoded_bbox=True,
            loss_bbox=dict(type='GIoULoss', loss_weight=10.0)),
        mask_head=dict(norm_cfg=norm_cfg)))

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999),
                   weight_decay=0.1),
    constructor='MIMLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.7),
    clip_grad=None)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=1000),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True,
         milestones=[8, 11], gamma=0.1),
]
train_dataloader = dict(batch_size=2)  # x 8 GPUs = 16
auto_scale_lr = dict(enable=False, base_batch_size=16)
