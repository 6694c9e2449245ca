# The canvas Mask R-CNN (canvas_mae-vit-demo_simple-fpn_mask-rcnn.py: data,
# heads, schedule) for the MAE pre-training on the canvases themselves
# (configs/demo/mae_canvas.py: ViT 128 wide, 4 blocks, patch 8 at 64 px, so
# the position table loads as it is). The simple pyramid upsamples the
# stride-8 map once (stride 4), keeps it (8) and max-pools it (16; then 32
# and 64), the strides of the demo config.
#   python tools/train.py configs/demo/mae_canvas.py
#   python tools/train.py configs/benchmarks/mask_rcnn/<this file>
_base_ = './canvas_mae-vit-demo_simple-fpn_mask-rcnn.py'
model = dict(
    backbone=dict(
        patch_size=8,
        init_cfg=dict(checkpoint='work_dirs/mae_canvas/iter_400.pth')),
    neck=dict(scale_factors=(2.0, 1.0, 0.5)))
