# iTPN HiViT-B, masked feature modeling with a moving-average teacher, as the
# paper describes it (the reference code has only the CLIP teacher): the
# teacher is an EMA of the backbone on the unmasked image; the student hides
# 75 % of the patches with a mask token in place of their stride-4 tokens
# (before stage 1) and every pyramid level (strides 16, 8, 4) regresses the
# teacher's LayerNorm-ed feature of the same stride on the masked patches.
# Optimisation as the pixel recipe (800 epochs, total batch 4096).
_base_ = './itpn-base_pixel_800e.py'

model = dict(
    _delete_=True,
    type='iTPNMFMPretrainer',
    mask_mode='stem_token',
    mask_ratio=0.75,
    backbone=dict(
        type='iTPNBackbone',
        arch='base',
        img_size=224,
        patch_size=16,
        mask_mode='stem_token',
        pos_embed_learnable=True,
        drop_path_rate=0.1),
    neck=dict(
        type='iTPNPyramidNeck',
        in_channels=512,
        fpn_dim=256,
        fpn_depth=2,
        out_mode='tokens'),
    head=dict(
        type='iTPNMFMHead',
        fpn_dim=256,
        target_dims=(512, 256, 128),
        criterion='mse'),
    target_generator=dict(type='iTPNEMATeacher', momentum=1e-3))
