# HPM ViT-L/16, 800 epochs: the ViT-B recipe with a 1024-wide, 24-deep encoder
# (decoder and loss predictor unchanged: 8 x 512, 16 heads).
_base_ = ['./hpm-vit-base_pixel_800e.py']

model = dict(
    backbone=dict(arch='large'),
    neck=dict(embed_dim=1024))
