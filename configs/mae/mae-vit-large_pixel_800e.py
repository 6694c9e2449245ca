# MAE ViT-L/16, 800 epochs: the reference's recommended pre-training script
# (mae PRETRAIN.md:3-18): total batch 4096 (8 nodes x 8 GPUs x 64; here 8 x
# 512, lr scales with the real total batch via --auto-scale-lr), norm_pix,
# mask ratio 0.75, 40 warm-up epochs, blr 1.5e-4 (lr = 1.5e-4 x 4096 / 256),
# wd 0.05; encoder 1024 wide, 24 blocks, 16 heads, decoder 512 x 8, 16 heads
# (models_mae.py:231-236). The released ViT-L checkpoint is the 1600-epoch
# run (mae FINETUNE.md:135-136): --cfg-options train_cfg.max_epochs=1600
# param_scheduler.1.end=1600 param_scheduler.1.T_max=1560.
_base_ = './mae-vit-base_pixel_1600e.py'

model = dict(
    backbone=dict(arch='large'),
    neck=dict(embed_dim=1024))

max_epochs = 800
warmup_epochs = 40
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min=0.0, by_epoch=True, begin=warmup_epochs, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
