# UperNet with iTPN on ADE20K: the pre-trained pyramid's levels concatenated
# with the backbone maps of the same stride (256 + 128 = 384 ch at stride 4,
# 256 + 256 = 512 at 8, 256 + 512 = 768 at 16, and a 2x max-pool of the
# stride-16 one at 32). Backbone and pyramid load from one iTPN pre-training
# checkpoint; the absolute pos embed is interpolated to the 512 crop (the
# reference segmentation code dropped it).
# Recipe (METHODS.md s.5): AdamW lr 3e-5, layer decay 0.90 over 30 blocks,
# 160k iterations, 512 crops, slide test with stride 341.
_base_ = './mae_vit-base-p16_upernet_160k_ade20k-512x512.py'
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.iTPNBackbone',
        arch='base',
        img_size=512,
        patch_size=16,
        drop_path_rate=0.1,
        out_indices=(0, 1, 2),
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=dict(
        _delete_=True,
        type='mmpretrain.iTPNPyramidNeck',
        in_channels=512,
        fpn_dim=256,
        fpn_depth=2,
        out_mode='uper',
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='neck.')),
    decode_head=dict(in_channels=[384, 512, 768, 768], channels=512),
    auxiliary_head=dict(in_channels=768, in_index=2))
optim_wrapper = dict(
    optimizer=dict(lr=3e-5),
    paramwise_cfg=dict(layer_decay_rate=0.90))
