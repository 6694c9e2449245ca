# SIM ViT-B/16 fine-tuning: the online encoder (no final norm exists; fc_norm
# after mean pooling is trained), sin-cos pos in SIM's (row-first) layout,
# MAE's recipe with layer decay 0.65.
_base_ = './mae_vit-base-p16_ft-100e_in1k.py'
model = dict(backbone=dict(sincos_layout='yx'))
