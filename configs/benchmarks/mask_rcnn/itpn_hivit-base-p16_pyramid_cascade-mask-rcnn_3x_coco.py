# Cascade Mask R-CNN 3x with iTPN (sunsmarterjie/iTPN,
# det/configs/itpn/cascade_pixel_itpn_base_3x.py on
# det/configs/_base_/models/cascade_mask_rcnn_vit_fpn.py): the backbone,
# pre-trained pyramid, data, optimiser and 3x schedule of
# itpn_hivit-base-p16_pyramid_mask-rcnn_3x_coco.py, with
# - drop path 0.2 (:28), lr 1e-4 (:148), 36 epochs, x0.1 at 27 and 33
#   (:160-161);
# - mmdet's Cascade Mask R-CNN (mmdet configs/_base_/models/
#   cascade-mask-rcnn_r50_fpn.py, equal to the reference's base file): RPN
#   SmoothL1 (beta 1/9) box loss (base :37), anchors may not cross the
#   border in RPN training (allowed_border 0, :128; Mask R-CNN's is -1),
#   2000 proposals in training (:131-137), three stages with loss weights
#   1, 0.5, 0.25 (:39-41), IoU thresholds 0.5 / 0.6 / 0.7 (:138-190), one
#   FCN mask head per stage (:104-111);
# - the file's box heads (:39-98): per stage a 4-conv + 1-fc (1024) head with
#   SyncBN, class-specific regression of decoded boxes with GIoU x10, coder
#   stds (0.1, 0.1, 0.2, 0.2), (0.05, 0.05, 0.1, 0.1),
#   (0.033, 0.033, 0.067, 0.067).
# The Portable* parts (inherited from the Mask R-CNN configs, and the box
# heads here) are mmdet's with RoIAlign / NMS on any device.
#   tools/dist_train.sh configs/benchmarks/mask_rcnn/<this file> 8 \
#     --cfg-options model.backbone.init_cfg.checkpoint=<ckpt> \
#                   model.neck.init_cfg.checkpoint=<ckpt>
_base_ = './itpn_hivit-base-p16_pyramid_mask-rcnn_3x_coco.py'

model = dict(
    type='CascadeRCNN',
    backbone=dict(drop_path_rate=0.2),
    rpn_head=dict(
        loss_bbox=dict(
            _delete_=True, type='SmoothL1Loss', beta=1.0 / 9.0,
            loss_weight=1.0)),
    roi_head=dict(
        type='CascadeRoIHead',
        num_stages=3,
        stage_loss_weights=[1, 0.5, 0.25],
        bbox_head=[
            dict(
                type='PortableShared4Conv1FCBBoxHead',
                in_channels=256,
                conv_out_channels=256,
                fc_out_channels=1024,
                roi_feat_size=7,
                num_classes=80,
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0., 0., 0., 0.],
                    target_stds=stds),
                reg_class_agnostic=False,
                reg_decoded_bbox=True,
                norm_cfg=dict(type='SyncBN', requires_grad=True),
                loss_cls=dict(
                    type='CrossEntropyLoss', use_sigmoid=False,
                    loss_weight=1.0),
                loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
            for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
                         [0.033, 0.033, 0.067, 0.067])
        ]),
    train_cfg=dict(
        rpn=dict(allowed_border=0),
        rpn_proposal=dict(max_per_img=2000),
        rcnn=[
            dict(
                assigner=dict(
                    type='MaxIoUAssigner',
                    pos_iou_thr=iou,
                    neg_iou_thr=iou,
                    min_pos_iou=iou,
                    match_low_quality=False,
                    ignore_iof_thr=-1),
                sampler=dict(
                    type='RandomSampler',
                    num=512,
                    pos_fraction=0.25,
                    neg_pos_ub=-1,
                    add_gt_as_proposals=True),
                mask_size=28,
                pos_weight=-1,
                debug=False) for iou in (0.5, 0.6, 0.7)
        ]))
optim_wrapper = dict(optimizer=dict(lr=1e-4))
