# MAE ViT-L/16 linear probe: the ViT-B probe (frozen encoder, cls token after
# the final norm, BatchNorm1d without affine + Linear, LARS, blr 0.1 x
# 16384 / 256, 10 warm-up epochs, no weight decay) for 50 epochs, which the
# reference says suffices for ViT-L / ViT-H (mae FINETUNE.md:163).
_base_ = './mae_vit-base-p16_linear-90e_in1k.py'

model = dict(
    backbone=dict(arch='large', frozen_stages=24),
    neck=dict(input_features=1024),
    head=dict(in_channels=1024))
train_cfg = dict(max_epochs=50)  # the cosine ends there
