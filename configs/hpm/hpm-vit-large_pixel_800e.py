# HPM ViT-L/16, 800 epochs: the ViT-B recipe with a 1024-wide, 24-deep encoder
# (decoder and loss predictor unchanged: 8 x 512, 16 heads; the reference's
# models_mae_learn_loss.py:338 mae_vit_large_patch16_dec512d8b). The
# reference's scripts/pretrain_large.sh is a copy of the base script (it
# names the base model, :5); its batch, lr and schedule are the base ones.
_base_ = ['./hpm-vit-base_pixel_800e.py']

model = dict(
    backbone=dict(arch='large'),
    neck=dict(embed_dim=1024))
