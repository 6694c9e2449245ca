# iTPN pixel pre-training on the *unlabelled* training canvases (64 px; see
# configs/demo/mae_canvas.py): the iTPN demo's HiViT (width 128, 1 + 1 MLP
# blocks, 4 attention blocks, patch 8, so stage strides 2 / 4 / 8) and its
# 64-wide pyramid, here on an 8 x 8 patch grid with the reference's 75 %
# masking. Backbone *and* pyramid transfer to
# configs/benchmarks/{mask_rcnn,upernet}/canvas_itpn-hivit-canvas_*.py.
#   python tools/data/make_canvas_sets.py data/canvas --num-train 1000
#   python tools/train.py configs/demo/itpn_canvas.py
_base_ = ['./itpn_fashion-mnist.py']
img_size = 64
patch_size = 8
mask_ratio = 0.75

# norm_pix=False, as configs/demo/mae_canvas.py (and for the same reason)
model = dict(
    mask_ratio=mask_ratio,
    backbone=dict(img_size=img_size),
    decoder=dict(num_patches=(img_size // patch_size)**2),
    head=dict(norm_pix=False))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.5, 1.0),
         backend='cv2', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomMaskGenerator', input_size=img_size,
         patch_size=patch_size, mask_ratio=mask_ratio),
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
