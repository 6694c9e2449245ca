# A tiny Mask R-CNN on the Fashion-MNIST canvas set (64 px, 10 classes) that
# starts from the demo MAE pre-training (configs/demo/mae_fashion-mnist.py:
# ViT 128 wide, 4 blocks, patch 4). CPU-sized; see docs/transfer.md.
#   python tools/data/make_canvas_sets.py data/canvas
#   python tools/train.py configs/benchmarks/mask_rcnn/<this file> \
#     --cfg-options model.backbone.init_cfg.checkpoint=<demo ckpt>
# The backbone's stride is 4 (patch 4), so the simple pyramid keeps that map
# and max-pools it to strides 8 and 16; strides 32 and 64 follow by stride-2
# pooling. The 32 px demo's 8 x 8 position table is resized to the 16 x 16
# grid when it loads. canvas_mae-vit-canvas_* and canvas_itpn-hivit-canvas_*
# take encoders pre-trained on the canvases themselves (docs/transfer.md).
_base_ = './mae_vit-base-p16_simple-fpn_mask-rcnn_1x_coco.py'

data_root = 'data/canvas/coco/'
classes = ('T-shirt_top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal',
           'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
embed_dims = 128
model = dict(
    # the demo pre-training normalised grey images with these statistics
    data_preprocessor=dict(
        mean=[72.94] * 3, std=[90.02] * 3, bgr_to_rgb=False),
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=embed_dims, num_layers=4,
                  num_heads=4,
                  feedforward_channels=embed_dims * 4),
        img_size=64,
        patch_size=4,
        drop_path_rate=0.0,
        out_indices=(3, ),
        init_cfg=dict(checkpoint='work_dirs/demo_mae/iter_800.pth')),
    neck=dict(in_channels=embed_dims, out_channels=64,
              scale_factors=(1.0, 0.5, 0.25)),
    rpn_head=dict(
        in_channels=64, feat_channels=64,
        anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, conv_out_channels=64,
                       fc_out_channels=256, num_classes=len(classes),
                       norm_cfg=dict(type='GN', num_groups=16),
                       reg_decoded_bbox=True,
                       loss_bbox=dict(type='GIoULoss', loss_weight=10.0)),
        mask_roi_extractor=dict(out_channels=64),
        mask_head=dict(in_channels=64, conv_out_channels=64,
                       num_classes=len(classes),
                       norm_cfg=dict(type='GN', num_groups=16))),
    # 1-3 objects a canvas: 64 RoIs per image for training and 100
    # proposals for testing are plenty (the RoI heads' convs and mmcv's CPU
    # RoIAlign backward dominate the time of a step)
    train_cfg=dict(
        rpn=dict(sampler=dict(num=64)),
        rcnn=dict(sampler=dict(num=64), mask_size=28)),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=100),
                  rcnn=dict(max_per_img=20)))

backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),  # canvas size
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor')),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=8),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

max_iters = 600
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop',
                 max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(lr=2e-4, weight_decay=0.05),
    # no decay for 1-D params, biases, tokens and position tables
    paramwise_cfg=dict(_delete_=True, layer_decay_rate=0.75))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', T_max=max_iters - 50, by_epoch=False,
         begin=50, end=max_iters, eta_min=1e-6),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
