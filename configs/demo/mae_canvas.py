# MAE pre-training on the *unlabelled* training canvases of the Fashion-MNIST
# canvas sets (64 px, 1-3 garments on a dark background; mmmim/datasets/
# canvas.py): the same domain and resolution as the canvas Mask R-CNN and
# UperNet configs fine-tune on, so the backbone loads without resizing its
# position table. The encoder is the MAE demo's (ViT 128 wide, 4 blocks) with
# patch 8: the same 8 x 8 grid (16 visible patches at 75 % masking) and cost
# as the 32 px demo, and the main stride of the iTPN canvas pre-training
# (configs/demo/itpn_canvas.py). The downstream side is
# configs/benchmarks/{mask_rcnn,upernet}/canvas_mae-vit-canvas_*.py.
#   python tools/data/make_canvas_sets.py data/canvas --num-train 1000
#   python tools/train.py configs/demo/mae_canvas.py
# tools/transfer_demo.py pretrain / table run it on its own canvas sets.
_base_ = ['./mae_fashion-mnist.py']
img_size = 64
patch_size = 8
num_patches = (img_size // patch_size)**2

# norm_pix=False (a switch of the MAE head): normalised per patch, the
# canvases' noisy background patches (about 70 % of them) become
# unpredictable unit-variance targets whose gradients drown the objects'
# (with norm_pix, after 300 of 400 iterations the masked object patches'
# loss was still 0.97 against 1.00 for background ones; docs/transfer.md)
model = dict(
    backbone=dict(img_size=img_size, patch_size=patch_size),
    neck=dict(num_patches=num_patches, patch_size=patch_size),
    head=dict(patch_size=patch_size, norm_pix=False))

# the canvases are png files: mmpretrain's CustomDataset without labels reads
# every image under data_root / data_prefix
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.5, 1.0),
         backend='cv2', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomMaskGenerator', input_size=img_size,
         patch_size=patch_size, mask_ratio=0.75),
    dict(type='PackInputs', algorithm_keys=['mask']),
]
train_dataloader = dict(
    batch_size=128,
    num_workers=1,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root='data/canvas/coco',
        data_prefix='train',
        with_label=False,
        pipeline=train_pipeline))

max_iters = 400
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=40),
    dict(type='CosineAnnealingLR', T_max=max_iters - 40, eta_min=1e-5,
         by_epoch=False, begin=40, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=max_iters, by_epoch=False,
                    max_keep_ckpts=1))
