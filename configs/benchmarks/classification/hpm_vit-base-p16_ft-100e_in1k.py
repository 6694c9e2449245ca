# HPM ViT-B/16 fine-tuning: MAE's recipe with layer decay 0.8 (METHODS.md).
# HPM checkpoints made by mmmim hold the student as `backbone.*`; to fine-tune
# the EMA teacher instead, extract it with tools/model_converters/
# extract_backbone.py --source teacher.
_base_ = './mae_vit-base-p16_ft-100e_in1k.py'
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.8))
