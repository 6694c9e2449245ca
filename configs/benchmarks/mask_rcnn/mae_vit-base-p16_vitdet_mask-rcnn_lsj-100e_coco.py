# ViTDet Mask R-CNN with a pre-trained plain ViT-B/16 (MAE / HPM / SIM
# encoders): the detection protocol MAE, HPM and SIM report (HPM README.md:65,
# Siamese-Image-Modeling README.md:99 defer to detectron2 projects/ViTDet;
# mmdet ports it as projects/ViTDet). Runs in mmdet's scope.
#   tools/dist_train.sh configs/benchmarks/mask_rcnn/<this file> 16 \
#     --cfg-options model.backbone.init_cfg.checkpoint=<pre-training ckpt>
# (an mmmim pre-training checkpoint; a reference MAE checkpoint after
# tools/model_converters/vit_to_mmmim.py). The checkpoint's cls_token and
# final norm ln1 are reported unexpected, the relative position tables
# missing (zero-initialised, as ViTDet): all by design.
#
# Values (detectron2 @02b5c4e, mmdet projects/ViTDet):
# - backbone: window attention (14 x 14) in blocks 0,1,3,4,6,7,9,10, global
#   in 2,5,8,11, decomposed relative position everywhere, abs pos table at
#   the 224 grid interpolated to the input, no cls token, drop path 0.1
#   (configs/common/models/mask_rcnn_vitdet.py:15-39)
# - simple feature pyramid: scales 4, 2, 1, 1/2 + max-pool level, 256 ch, LN
#   (mask_rcnn_vitdet.py:41-47); 2-conv RPN, 4conv1fc box head and mask head
#   with LN (mask_rcnn_vitdet.py:50-57; mmdet vitdet_mask-rcnn_vit-b-mae_
#   lsj-100e.py:41-55)
# - large-scale jitter at 1024: flip, resize 0.1-2.0, 1024 crop, pad to 1024
#   (mmdet lsj-100e_coco-instance.py:12-29; projects/ViTDet/configs/common/
#   coco_loader_lsj.py:8-15); test: longer side 1024, padded
# - total batch 64 (coco_loader_lsj.py:17), AdamW lr 1e-4, betas (0.9,
#   0.999), wd 0.1 (configs/common/optim.py:19-28), no decay for norm layers
#   (weight_decay_norm=0.0) and pos_embed (mask_rcnn_vitdet_b_100ep.py:39),
#   biases and relative position tables decayed; layer decay 0.7 over 12
#   blocks, detectron2's layer-id rule (mask_rcnn_vitdet_b_100ep.py:38)
# - 184375 iterations (100 epochs), warm-up 250 iterations from 0.001,
#   x0.1 at 163889 and 177546 (mask_rcnn_vitdet_b_100ep.py:24-34); AMP
#   (mask_rcnn_vitdet_b_100ep.py:15)
# Not ported: DDP fp16 gradient compression (a communication setting).
# The Portable* heads / RoI extractors are mmdet's with RoIAlign and NMS on any
# device (torchvision's kernels where mmcv has none): mmmim/models/detection.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['mmmim', 'mmmim.models.detection'], allow_failed_imports=False)

image_size = (1024, 1024)
# LayerNorm over the channels of NCHW maps (eps 1e-6 as detectron2's LN)
norm_cfg = dict(type='mmpretrain.LN2d', eps=1e-6, requires_grad=True)
model = dict(
    data_preprocessor=dict(
        pad_size_divisor=32,
        batch_augments=[
            dict(type='BatchFixedSizePad', size=image_size, pad_mask=True)
        ]),
    backbone=dict(
        _delete_=True,
        type='mmpretrain.WindowedViT',
        arch='base',
        img_size=1024,
        patch_size=16,
        pretrain_img_size=224,
        window_size=14,
        window_block_indexes=[0, 1, 3, 4, 6, 7, 9, 10],
        use_rel_pos=True,
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=dict(
        _delete_=True,
        type='mmpretrain.SimpleFeaturePyramid',
        in_channels=768,
        out_channels=256,
        scale_factors=(4.0, 2.0, 1.0, 0.5),
        num_outs=5,
        norm_cfg=dict(type='LN2d', eps=1e-6)),
    rpn_head=dict(type='PortableRPNHead', num_convs=2),
    roi_head=dict(
        bbox_roi_extractor=dict(type='PortableSingleRoIExtractor'),
        mask_roi_extractor=dict(type='PortableSingleRoIExtractor'),
        bbox_head=dict(
            type='PortableShared4Conv1FCBBoxHead',
            conv_out_channels=256,
            norm_cfg=norm_cfg),
        mask_head=dict(type='PortableFCNMaskHead', norm_cfg=norm_cfg)))

# ------------------------------------------------------------------ data
dataset_type = 'CocoDataset'
data_root = 'data/coco/'
backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.1, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=image_size,
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='Pad', size=image_size, pad_val=dict(img=(114, 114, 114))),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='Pad', size=image_size, pad_val=dict(img=(114, 114, 114))),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor')),
]
train_dataloader = dict(
    batch_size=4,  # x 16 GPUs = 64
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_val2017.json',
    metric=['bbox', 'segm'],
    format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator

# -------------------------------------------------------------- schedule
optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999),
                   weight_decay=0.1),
    constructor='MIMLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.7,
        decay_1d=True,  # biases (and rel_pos tables) are decayed ...
        norm_decay_mult=0.0,  # ... norm layers are not
        no_decay_names=('pos_embed', )))

max_iters = 184375  # 100 epochs x 118k images / 64
interval = 5000
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=250),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False,
         milestones=[163889, 177546], gamma=0.1),
]
train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=interval,
    dynamic_intervals=[(max_iters // interval * interval + 1, max_iters)])
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, save_last=True,
                    interval=interval, max_keep_ckpts=5))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
# the learning rate above is written for a total batch of 64
auto_scale_lr = dict(enable=False, base_batch_size=64)
