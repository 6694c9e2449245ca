# Mask R-CNN with iTPN: the HiViT-B backbone *and* the pre-trained feature
# pyramid as the neck (strides 4, 8, 16 from the pyramid, 32 and 64
# average-pooled; 5 x 256 channels, no extra FPN). Both load from one iTPN
# pre-training checkpoint (prefix 'backbone.' and 'neck.').
#   tools/dist_train.sh configs/benchmarks/mask_rcnn/<this file> 8 \
#     --cfg-options model.backbone.init_cfg.checkpoint=<ckpt> \
#                   model.neck.init_cfg.checkpoint=<ckpt>
# Recipe (METHODS.md s.5): AdamW lr 2e-4, wd 0.05, layer decay 0.90 over the
# 30 blocks, 12 epochs, GIoU box loss, 4conv1fc box head.
_base_ = './mae_vit-base-p16_simple-fpn_mask-rcnn_1x_coco.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.iTPNBackbone',
        arch='base',
        img_size=1024,
        patch_size=16,
        drop_path_rate=0.2,
        use_rel_pos_bias=False,
        out_indices=(0, 1, 2),  # strides 4, 8, 16: the pyramid's inputs
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=dict(
        _delete_=True,
        type='mmpretrain.iTPNPyramidNeck',
        in_channels=512,
        fpn_dim=256,
        fpn_depth=2,  # pixel pre-training (1 for the CLIP variant)
        out_mode='fpn',
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='neck.')))
optim_wrapper = dict(
    optimizer=dict(lr=2e-4, weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=0.90))
