# The canvas UperNet (canvas_mae-vit-demo_upernet.py: data, heads, schedule)
# for the MAE pre-training on the canvases themselves
# (configs/demo/mae_canvas.py: ViT 128 wide, 4 blocks, patch 8 at 64 px, so
# the position table loads as it is). Feature2Pyramid turns the four stride-8
# block outputs into strides 2, 4, 8, 16, the strides of the iTPN canvas
# UperNet (canvas_itpn-hivit-canvas_upernet.py).
#   python tools/train.py configs/demo/mae_canvas.py
#   python tools/train.py configs/benchmarks/upernet/<this file>
_base_ = './canvas_mae-vit-demo_upernet.py'
model = dict(
    backbone=dict(
        patch_size=8,
        init_cfg=dict(checkpoint='work_dirs/mae_canvas/iter_400.pth')),
    neck=dict(rescales=[4, 2, 1, 0.5]))
