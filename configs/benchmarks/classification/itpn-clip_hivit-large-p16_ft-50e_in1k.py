# iTPN HiViT-L ImageNet fine-tuning of a CLIP-pre-trained model (e.g. from
# configs/itpn/itpn-large_clip_300e.py), the reference's "Fine-tune iTPN-L/16"
# command (sunsmarterjie/iTPN, itpn_clip/README.md:151-176): model
# itpn_large_2240_patch16_224 (:163), total batch 1024 = 8 nodes x 8 GPUs x
# 16 (:156,159; 8 GPUs x 128 here), lr 2e-4 absolute (:164), drop path 0.25
# (:166), 50 epochs (:167), layer decay 0.55 (:169; over the 44 blocks
# rescaled to d^(13/45), utils/lr_decay.py:23-29), 5 warm-up epochs (:171);
# layer scale 0.1 (the argparse default, run_itpn_finetuning.py:54: the
# command passes none) and everything else as the base recipe
# (itpn-clip_hivit-base-p16_ft-100e_in1k.py).
#   tools/dist_train.sh configs/benchmarks/classification/<this file> 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=<ckpt>
_base_ = './itpn-clip_hivit-base-p16_ft-100e_in1k.py'

train_dataloader = dict(batch_size=128)
model = dict(
    backbone=dict(arch='large', drop_path_rate=0.25),
    neck=dict(in_channels=768),
    head=dict(in_channels=768))
optim_wrapper = dict(
    optimizer=dict(lr=2e-4),
    paramwise_cfg=dict(layer_decay_rate=0.55))
# warm-up np.linspace(0, lr, warm-up steps) (itpn_clip/utils/utils.py:
# 446-454): lr reached at the last warm-up step
param_scheduler = [
    dict(type='LinearWarmupLR', start_factor=0., linspace=True,
         by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    # the floor scaled by each group's layer decay like its lr
    # (itpn_clip engine_for_finetuning.py:60)
    dict(type='LayerDecayCosineAnnealingLR', by_epoch=True, begin=5,
         eta_min=1e-6, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=50)
auto_scale_lr = dict(base_batch_size=1024)
