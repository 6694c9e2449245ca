# Mask R-CNN with iTPN, the reference recipe (sunsmarterjie/iTPN,
# det/configs/itpn/pixel_itpn_base_1x_ld090_dp005.py): the HiViT-B backbone
# *and* the pre-trained feature pyramid as the neck (strides 4, 8, 16 from
# the pyramid, 32 and 64 average-pooled; 5 x 256 channels, no extra FPN;
# det/mmdet/models/backbones/iTPN_pixel.py:378-404). Both load from one iTPN
# pre-training checkpoint (prefix 'backbone.' and 'neck.').
#   tools/dist_train.sh configs/benchmarks/mask_rcnn/<this file> 8 \
#     --cfg-options model.backbone.init_cfg.checkpoint=<ckpt> \
#                   model.neck.init_cfg.checkpoint=<ckpt>
# Values (pixel_itpn_base_1x_ld090_dp005.py unless noted):
# - backbone: absolute table at the 224 grid interpolated to every input
#   (:14, iTPN_pixel.py:314-331), no relative position bias (:29), drop path
#   0.05 (:27), LayerNorm eps 1e-5 (torch's default: iTPN_pixel.py:167, the
#   config passes no norm_layer); pyramid depth 1 (:20): a pixel checkpoint
#   (pre-trained with depth 2) loads without its second block per level;
# - RPN: one conv, anchors 8 x (0.5, 1, 2) on strides 4-64 (:39-54); box head:
#   4 convs + 1 fc (1024) with SyncBN, GIoU loss x10 on decoded boxes
#   (:62-80); mask head: 4 convs without norm (:86-93); the R-CNN sampling /
#   NMS settings of det/configs/_base_/models/mask_rcnn_r50_fpn.py:70-120
#   (mmdet's own);
# - data: flip, then DETR's multi-scale resize (short side 480-800, long
#   <= 1333) or resize 400-600 + 384-600 crop + multi-scale resize (:100-132);
#   total batch 64 = 32 GPUs (det/README.md:39) x 2 images
#   (det/configs/_base_/datasets/coco_instance.py:32); 8 GPUs x 8 here;
# - AdamW lr 2e-4 (not scaled), (0.9, 0.999), wd 0.05 (:140-145); layer
#   decay 0.90 with num_layers 30 (:146-149) under the reference constructor's
#   rule (det/mmcv_custom/layer_decay_optimizer_constructor.py:17-26,75-92):
#   ids over the flat block list (patch merges counted, so ids run to 32 and
#   the last main block gets 1 / 0.9), patch embedding 0, the absolute table
#   (not in its id-0 list) and everything outside the blocks the top id; no
#   decay for 1-D params, biases, *_token and *pos_embed (:78-81; the
#   config's custom_keys are never read);
# - 12 epochs, x0.1 at 9 and 11 (:155-156), linear warm-up 500 iterations
#   from 0.001 (det/configs/_base_/schedules/schedule_1x.py:5-10); fp16
#   (:160-167), no grad clipping.
_base_ = './mae_vit-base-p16_simple-fpn_mask-rcnn_1x_coco.py'

ln = dict(type='LN', eps=1e-5)
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.iTPNBackbone',
        arch='base',
        img_size=224,  # the table stays at the pre-training grid
        patch_size=16,
        drop_path_rate=0.05,
        use_rel_pos_bias=False,
        norm_cfg=ln,
        out_indices=(0, 1, 2),  # strides 4, 8, 16: the pyramid's inputs
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=dict(
        _delete_=True,
        type='mmpretrain.iTPNPyramidNeck',
        in_channels=512,
        fpn_dim=256,
        fpn_depth=1,
        norm_cfg=ln,
        out_mode='fpn',
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='neck.')),
    rpn_head=dict(num_convs=1),
    roi_head=dict(
        bbox_head=dict(
            type='PortableShared4Conv1FCBBoxHead',
            conv_out_channels=256,
            fc_out_channels=1024,
            norm_cfg=dict(type='SyncBN', requires_grad=True),
            reg_decoded_bbox=True,
            loss_bbox=dict(type='GIoULoss', loss_weight=10.0)),
        mask_head=dict(norm_cfg=None)))

# DETR / Sparse R-CNN augmentation (mmdet 3's RandomChoice spelling)
scales = [(480, 1333), (512, 1333), (544, 1333), (576, 1333), (608, 1333),
          (640, 1333), (672, 1333), (704, 1333), (736, 1333), (768, 1333),
          (800, 1333)]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [dict(type='RandomChoiceResize', scales=scales, keep_ratio=True)],
            [
                dict(type='RandomChoiceResize',
                     scales=[(400, 1333), (500, 1333), (600, 1333)],
                     keep_ratio=True),
                dict(type='RandomCrop', crop_type='absolute_range',
                     crop_size=(384, 600), allow_negative_crop=True),
                dict(type='RandomChoiceResize', scales=scales,
                     keep_ratio=True),
            ],
        ]),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=8,  # x 8 GPUs = 64
    dataset=dict(pipeline=train_pipeline))

optim_wrapper = dict(
    optimizer=dict(lr=2e-4, weight_decay=0.05),
    paramwise_cfg=dict(
        _delete_=True,
        layer_decay_rate=0.90,
        layer_id_rule='flat',
        num_layers=30,
        first_layer_names=('patch_embed', 'cls_token', 'mask_token'),
        no_decay_names=('pos_embed', 'cls_token', 'mask_token')))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True,
         milestones=[9, 11], gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=64)
