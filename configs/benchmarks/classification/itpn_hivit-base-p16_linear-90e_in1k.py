# iTPN HiViT-B linear probe: frozen backbone (all three stages and the
# position table), global average pool of the stride-16 map, BatchNorm1d
# (no affine) + Linear, LARS as MAE's probe.
_base_ = './mae_vit-base-p16_linear-90e_in1k.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='iTPNBackbone',
        arch='base',
        img_size=224,
        patch_size=16,
        out_indices=(2, ),
        frozen_stages=3,
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=[
        dict(type='GlobalAveragePooling'),
        dict(type='ClsBatchNormNeck', input_features=512, affine=False,
             eps=1e-6),
    ],
    head=dict(in_channels=512))
