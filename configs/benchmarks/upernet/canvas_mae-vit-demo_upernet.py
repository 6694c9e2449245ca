# A tiny UperNet on the Fashion-MNIST canvas class maps (64 px, background +
# 10 classes) that starts from the demo MAE pre-training
# (configs/demo/mae_fashion-mnist.py: ViT 128 wide, 4 blocks, patch 4).
# Trains and tests on whole 64 px canvases (the demo's 8 x 8 position table
# is resized to the 16 x 16 grid when it loads), the size the canvas
# pre-trainings (configs/demo/{mae,itpn}_canvas.py) see, so their tables load
# as they are (random crops would squeeze them). CPU-sized.
#   python tools/data/make_canvas_sets.py data/canvas
#   python tools/train.py configs/benchmarks/upernet/<this file> \
#     --cfg-options model.backbone.init_cfg.checkpoint=<demo ckpt>
_base_ = './mae_vit-base-p16_upernet_160k_ade20k-512x512.py'

data_root = 'data/canvas/ade/'
classes = ('background', 'T-shirt_top', 'Trouser', 'Pullover', 'Dress',
           'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
crop_size = (64, 64)
embed_dims = 128
norm_cfg = dict(type='BN', requires_grad=True)  # one process, CPU
model = dict(
    data_preprocessor=dict(
        size=crop_size, mean=[72.94] * 3, std=[90.02] * 3,
        bgr_to_rgb=False),
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=embed_dims, num_layers=4,
                  num_heads=4,
                  feedforward_channels=embed_dims * 4),
        img_size=64,
        patch_size=4,
        drop_path_rate=0.0,
        layer_scale_init_value=0.,  # no layer scale (the measured demo)
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(checkpoint='work_dirs/demo_mae/iter_800.pth')),
    # stride-4 maps -> strides 2, 4, 8, 16
    neck=dict(embed_dim=embed_dims, rescales=[2, 1, 0.5, 0.25],
              norm_cfg=norm_cfg),
    decode_head=dict(in_channels=[embed_dims] * 4, channels=64,
                     pool_scales=(1, 2, 3), num_classes=len(classes),
                     norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=embed_dims, channels=32,
                        num_classes=len(classes), norm_cfg=norm_cfg),
    test_cfg=dict(mode='whole'))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='PackSegInputs'),
]
dataset = dict(
    _delete_=True,
    type='BaseSegDataset',
    data_root=data_root,
    metainfo=dict(classes=classes),
    img_suffix='.png',
    seg_map_suffix='.png',
    reduce_zero_label=False)
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=False,
    dataset=dict(
        dataset,
        data_prefix=dict(img_path='images/training',
                         seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=False,
    dataset=dict(
        dataset,
        data_prefix=dict(img_path='images/validation',
                         seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 400
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(lr=3e-4),
    # no decay for 1-D params, biases, tokens and position tables
    paramwise_cfg=dict(_delete_=True, layer_decay_rate=0.75))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=50),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=50, end=max_iters,
         by_epoch=False),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval=max_iters, max_keep_ckpts=1))
