# MAE ViT-H/14 linear probe: the ViT-L probe (50 epochs, mae FINETUNE.md:163)
# on the 32-block, 1280-wide encoder with 14 px patches.
_base_ = './mae_vit-large-p16_linear-50e_in1k.py'

model = dict(
    backbone=dict(arch='huge', patch_size=14, frozen_stages=32),
    neck=dict(input_features=1280),
    head=dict(in_channels=1280))
