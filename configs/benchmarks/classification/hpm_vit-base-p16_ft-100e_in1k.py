# HPM ViT-B/16 fine-tuning, the reference recipe (Haochen-Wang409/HPM,
# scripts/finetune_base.sh): MAE's fine-tuning (main_finetune.py is MAE's)
# with total batch 384 = 8 GPUs x 48 (:1,3), base lr 5e-4 x 384 / 256 and
# layer decay 0.8 (:9), 100 epochs with 5 warm-up (:7-8), wd 0.05, drop path
# 0.1, random erasing 0.25, mixup 0.8, cutmix 1.0 (:9-10).
# HPM checkpoints made by mmmim hold the student as `backbone.*`; to fine-tune
# the EMA teacher instead (the reference's --teacher, main_finetune.py:113),
# extract it with tools/model_converters/extract_backbone.py --source teacher.
_base_ = './mae_vit-base-p16_ft-100e_in1k.py'
train_dataloader = dict(batch_size=48)  # x 8 GPUs = 384
optim_wrapper = dict(
    optimizer=dict(lr=5e-4 * 384 / 256),
    paramwise_cfg=dict(layer_decay_rate=0.8))
auto_scale_lr = dict(base_batch_size=384)
