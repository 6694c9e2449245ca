# iTPN HiViT-L ImageNet fine-tuning of a pixel-pre-trained model, the
# reference's iTPN-L script (sunsmarterjie/iTPN, itpn_pixel/FINETUNE.md:
# 28-48): total batch 1024 = 4 nodes x 8 GPUs x 32 (:31,35; 8 GPUs x 128
# here), model itpn_large (:39; models/models_itpn.py:421-425: relative
# position bias on), 50 epochs, 5 warm-up (:41-42), blr 1e-3, i.e. lr
# 1e-3 x 1024 / 256 (:43, main_finetune.py:297), layer decay 0.55 (:44), wd
# 0.05 (:45), drop path 0.2, random erasing 0.25, mixup 0.8, cutmix 1.0
# (:46); everything else as the HiViT-B recipe
# (itpn_hivit-base-p16_ft-100e_in1k.py): layer decay over the 44 blocks
# rescaled to a 12-block equivalent, d_eff = 0.55^(13/45)
# (util/lr_decay.py:23-29).
#   tools/dist_train.sh \
#       configs/benchmarks/classification/itpn_hivit-large-p16_ft-50e_in1k.py \
#       8 --cfg-options model.backbone.init_cfg.checkpoint=<ckpt>
_base_ = './itpn_hivit-base-p16_ft-100e_in1k.py'

model = dict(
    backbone=dict(arch='large', drop_path_rate=0.2),
    neck=dict(in_channels=768),
    head=dict(in_channels=768))
optim_wrapper = dict(
    optimizer=dict(lr=1e-3 * 1024 / 256),
    paramwise_cfg=dict(layer_decay_rate=0.55))
train_cfg = dict(max_epochs=50)  # the cosine ends there
