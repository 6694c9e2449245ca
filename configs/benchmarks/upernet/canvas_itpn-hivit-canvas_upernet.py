# A tiny UperNet with iTPN on the Fashion-MNIST canvas class maps: the canvas
# pre-training's HiViT (configs/demo/itpn_canvas.py) and its pre-trained
# pyramid, each level concatenated with the backbone map of the same stride
# (out_mode='uper', as itpn_hivit-base-p16_upernet_160k_ade20k-512x512.py):
# 64 + 32, 64 + 64 and 64 + 128 channels at strides 2, 4, 8 and a max-pool
# of the last at 16. Data and schedule are those of
# canvas_mae-vit-demo_upernet.py (whole 64 px canvases).
#   python tools/train.py configs/benchmarks/upernet/<this file> \
#     --cfg-options model.backbone.init_cfg.checkpoint=<ckpt> \
#                   model.neck.init_cfg.checkpoint=<ckpt>
# model.neck.init_cfg=None keeps the pyramid fresh (backbone-only transfer).
_base_ = './canvas_mae-vit-demo_upernet.py'

embed_dims = 128
fpn_dim = 64
itpn_ckpt = 'work_dirs/itpn_canvas/iter_400.pth'
norm_cfg = dict(type='BN', requires_grad=True)
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
        out_mode='uper',
        init_cfg=dict(type='Pretrained', checkpoint=itpn_ckpt,
                      prefix='neck.')),
    decode_head=dict(
        in_channels=[fpn_dim + embed_dims // 4, fpn_dim + embed_dims // 2,
                     fpn_dim + embed_dims, fpn_dim + embed_dims]),
    auxiliary_head=dict(in_channels=fpn_dim + embed_dims, in_index=2))
# iTPN's segmentation recipe: layer decay 0.90 over the blocks; the lr is the
# MAE canvas config's (the full-size ratio 3e-5 / 1e-4 is not carried over)
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.90))
