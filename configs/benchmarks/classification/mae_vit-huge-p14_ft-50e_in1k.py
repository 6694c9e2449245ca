# MAE ViT-H/14 ImageNet fine-tuning, the reference's ViT-Huge script
# (mae FINETUNE.md:98-110): total batch 1024 (8 nodes x 8 GPUs x 16; here
# 8 GPUs x 128), 50 epochs, blr 1e-3 (lr = 1e-3 x 1024 / 256), layer decay
# 0.75, wd 0.05, drop path 0.3, random erasing 0.25, mixup 0.8, cutmix 1.0;
# patch 14 (16 x 16 grid at 224: models_vit.py:70-74).
_base_ = './mae_vit-large-p16_ft-50e_in1k.py'

model = dict(
    backbone=dict(arch='huge', patch_size=14, drop_path_rate=0.3),
    head=dict(in_channels=1280))
