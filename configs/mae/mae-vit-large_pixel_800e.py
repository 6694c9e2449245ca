# MAE ViT-L/16, 800 epochs: the reference's recommended pre-training script
# (mae PRETRAIN.md:3-18): total batch 4096 (8 nodes x 8 GPUs x 64; here 8 x
# 512, lr scales with the real total batch via --auto-scale-lr), norm_pix,
# mask ratio 0.75, 40 warm-up epochs, blr 1.5e-4 (lr = 1.5e-4 x 4096 / 256),
# wd 0.05; encoder 1024 wide, 24 blocks, 16 heads, decoder 512 x 8, 16 heads
# (models_mae.py:231-236). The released ViT-L checkpoint is the 1600-epoch
# run (mae FINETUNE.md:135-136): --cfg-options train_cfg.max_epochs=1600.
_base_ = './mae-vit-base_pixel_1600e.py'

model = dict(
    backbone=dict(arch='large'),
    neck=dict(embed_dim=1024))

train_cfg = dict(max_epochs=800)
