# HPM ViT-L/16 ImageNet fine-tuning, the reference script
# (HPM scripts/finetune_large.sh:3-12): total batch 512 (8 GPUs x 64),
# 50 epochs, 5 warm-up epochs, blr 5e-4 (lr = 5e-4 x 512 / 256), layer decay
# 0.8, wd 0.05, drop path 0.1, random erasing 0.25, mixup 0.8, cutmix 1.0;
# cosine to 1e-6 (main_finetune.py:69), global pool + fc_norm
# (main_finetune.py:109-110). The HPM student is `backbone.*` in mmmim
# checkpoints (tools/model_converters/extract_backbone.py --source teacher
# gives the EMA teacher).
_base_ = './mae_vit-base-p16_ft-100e_in1k.py'

model = dict(
    backbone=dict(arch='large', drop_path_rate=0.1),
    head=dict(in_channels=1024))
train_dataloader = dict(batch_size=64)  # x 8 GPUs = 512
optim_wrapper = dict(
    optimizer=dict(lr=5e-4 * 512 / 256),
    paramwise_cfg=dict(layer_decay_rate=0.8))
train_cfg = dict(max_epochs=50)  # the cosine ends there
auto_scale_lr = dict(base_batch_size=512)
