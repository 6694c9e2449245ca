# Mask R-CNN with a pre-trained plain ViT-B/16 (MAE / HPM / SIM encoders), a
# short protocol: ViTDet's model and optimiser with mmdet's 1x schedule.
# The reference detection protocol is
# mae_vit-base-p16_vitdet_mask-rcnn_lsj-100e_coco.py (100 epochs of
# large-scale jitter, window attention); this one keeps, from ViTDet
# (detectron2 projects/ViTDet via mmdet projects/ViTDet,
# vitdet_mask-rcnn_vit-b-mae_lsj-100e.py and lsj-100e_coco-instance.py):
# - ViT-B/16, drop path 0.1, no final norm, the absolute table at the 224
#   pre-training grid interpolated to every input (vitdet...lsj-100e.py:18-43);
# - simple feature pyramid (strides 4-64, 256 ch, LN), 2-conv RPN, 4conv1fc
#   box head and mask head with LN (vitdet...lsj-100e.py:44-58), mmdet's
#   default box loss;
# - AdamW (0.9, 0.999), wd 0.1, layer decay 0.7 over 12 blocks
#   (lsj-100e_coco-instance.py:78-91), detectron2's weight-decay rule (norm
#   layers and pos_embed not decayed, biases decayed, as the LSJ config);
#   fp16;
# - lr 1e-4 for a total batch of 64 (lsj-100e_coco-instance.py:93,135), scaled
#   linearly to the total batch here: 8 GPUs x 2 = 16 -> 2.5e-5
#   (--auto-scale-lr rescales it for another total).
# Differs from ViTDet by design (the LSJ config has them): mmdet's 1x
# schedule (12 epochs, 500-iteration warm-up, x0.1 at 8 and 11) and 1x data
# (1333 x 800 resize + flip), global attention in every block without
# relative position, the pre-training cls token kept in the sequence.
# Runs in mmdet's scope; mmmim parts are `mmpretrain.<Name>`.
#   tools/dist_train.sh configs/benchmarks/mask_rcnn/<this file> 8 \
#     --cfg-options model.backbone.init_cfg.checkpoint=<pre-training ckpt>
# The Portable* heads and RoI extractors are mmdet's with RoIAlign / NMS on any
# device (torchvision's kernels where mmcv has none, e.g. CUDA with mmcv's CPU
# build): mmmim/models/detection.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['mmmim', 'mmmim.models.detection'], allow_failed_imports=False)

# LayerNorm over the channels of NCHW maps (eps 1e-6 as detectron2's LN)
norm_cfg = dict(type='mmpretrain.LN2d', eps=1e-6, requires_grad=True)
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='mmpretrain.MaskedViT',
        arch='base',
        img_size=224,  # the table stays at the pre-training grid
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

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4 * 16 / 64, betas=(0.9, 0.999),
                   weight_decay=0.1),
    constructor='MIMLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.7,
        decay_1d=True,  # biases are decayed ...
        norm_decay_mult=0.0,  # ... norm layers are not
        no_decay_names=('pos_embed', )))
train_dataloader = dict(batch_size=2)  # x 8 GPUs = 16
auto_scale_lr = dict(enable=False, base_batch_size=16)
