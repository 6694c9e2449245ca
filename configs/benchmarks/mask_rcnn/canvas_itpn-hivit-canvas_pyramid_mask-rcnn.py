# A tiny Mask R-CNN with iTPN on the Fashion-MNIST canvas set: the canvas
# pre-training's HiViT (configs/demo/itpn_canvas.py: width 128, depths
# 1 / 1 / 4, patch 8) *and* its pre-trained feature pyramid as the neck, as
# itpn_hivit-base-p16_pyramid_mask-rcnn_1x_coco.py does at full size. Data,
# heads and schedule are those of canvas_mae-vit-demo_simple-fpn_mask-rcnn.py.
#   python tools/train.py configs/benchmarks/mask_rcnn/<this file> \
#     --cfg-options model.backbone.init_cfg.checkpoint=<ckpt> \
#                   model.neck.init_cfg.checkpoint=<ckpt>
# model.neck.init_cfg=None keeps the pyramid fresh (backbone-only transfer).
# With patch 8 the pyramid's levels have strides 2, 4, 8 (then 16, 32
# average-pooled); the anchors keep the MAE config's pixel sizes
# (16 ... 256 px: scale 8 on strides 2 ... 32).
_base_ = './canvas_mae-vit-demo_simple-fpn_mask-rcnn.py'

embed_dims = 128
fpn_dim = 64  # the pre-training pyramid's width = the heads' width
strides = [2, 4, 8, 16, 32]
itpn_ckpt = 'work_dirs/itpn_canvas/iter_400.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.iTPNBackbone',
        arch=dict(embed_dims=embed_dims, depths=[1, 1, 4], num_heads=4),
        img_size=64,
        patch_size=8,
        drop_path_rate=0.0,
        out_indices=(0, 1, 2),
        init_cfg=dict(type='Pretrained', checkpoint=itpn_ckpt,
                      prefix='backbone.')),
    neck=dict(
        _delete_=True,
        type='mmpretrain.iTPNPyramidNeck',
        in_channels=embed_dims,
        fpn_dim=fpn_dim,
        fpn_depth=1,
        out_mode='fpn',
        init_cfg=dict(type='Pretrained', checkpoint=itpn_ckpt,
                      prefix='neck.')),
    rpn_head=dict(
        anchor_generator=dict(scales=[8], strides=strides)),
    roi_head=dict(
        bbox_roi_extractor=dict(featmap_strides=strides[:4]),
        mask_roi_extractor=dict(featmap_strides=strides[:4])))
# iTPN's detection recipe: layer decay 0.90 over the blocks (the pyramid is
# outside the backbone: full lr)
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.90))
