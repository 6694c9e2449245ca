# SIM ViT-B/16 fine-tuning, the reference recipe
# (OpenGVLab/Siamese-Image-Modeling,
# configs/finetune/dist_finetune_sim_base.sh):
# MAE's fine-tuning protocol (main_finetune.py is MAE's) with
# - total batch 1024 (:11), base lr 2.5e-4 x 1024 / 256 (half of MAE's) and
#   layer decay 0.65 (:28), 100 epochs (:27), wd 0.05, drop path 0.1, random
#   erasing 0.25, mixup 0.8, cutmix 1.0 (:29); warm-up 5, min lr 1e-6
#   (main_finetune.py:73,76);
# - the position table is loaded and kept FROZEN (models_vit.py:217-218,
#   requires_grad=False): pos_embed_type='sincos' here freezes it; the table
#   itself comes from the checkpoint (SIM's row-first sin-cos layout);
# - the online encoder has no final norm; fc_norm after mean pooling is new
#   (models_vit.py:205-212), no layer scale (init_values 1.0 means none,
#   main_finetune.py:157,256).
_base_ = './mae_vit-base-p16_ft-100e_in1k.py'
model = dict(backbone=dict(pos_embed_type='sincos', sincos_layout='yx'))
optim_wrapper = dict(optimizer=dict(lr=2.5e-4 * 1024 / 256))
