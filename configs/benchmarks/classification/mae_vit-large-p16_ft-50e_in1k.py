# MAE ViT-L/16 ImageNet fine-tuning, the reference's ViT-Large script
# (mae FINETUNE.md:81-93): total batch 1024 (4 nodes x 8 GPUs x 32; here
# 8 GPUs x 128), 50 epochs, blr 1e-3 (lr = 1e-3 x 1024 / 256), layer decay
# 0.75, wd 0.05, drop path 0.2, random erasing 0.25, mixup 0.8, cutmix 1.0;
# the rest as ViT-B (5 warm-up epochs, cosine to 1e-6: main_finetune.py:
# 73-77; global pool + fc_norm: main_finetune.py:114-116).
_base_ = './mae_vit-base-p16_ft-100e_in1k.py'

model = dict(
    backbone=dict(arch='large', drop_path_rate=0.2),
    head=dict(in_channels=1024))
optim_wrapper = dict(
    optimizer=dict(lr=1e-3 * 1024 / 256),
    paramwise_cfg=dict(layer_decay_rate=0.75))
train_cfg = dict(max_epochs=50)  # the cosine ends there
