# iTPN HiViT-B ImageNet fine-tuning, the reference recipe (sunsmarterjie/iTPN,
# itpn_pixel/FINETUNE.md:9-25 and main_finetune.py defaults):
# - total batch 1024 = 4 nodes x 8 GPUs x 32 (FINETUNE.md:9,13; 8 GPUs x 128
#   here), base lr 4e-4 x 1024 / 256 (:21, main_finetune.py:297),
#   100 epochs, 5 warm-up (:19-20), min lr 5e-6 (main_finetune.py:79), AdamW
#   (0.9, 0.999) (:69,325), wd 0.05, drop path 0.15, random erasing 0.25,
#   mixup 0.8, cutmix 1.0 (FINETUNE.md:23-24);
# - relative position bias on (models/models_itpn.py:417: new tables, reported
#   as missing when loading the pixel pre-training checkpoint), mean pooling +
#   fc_norm + linear head (:296-297, main_finetune.py:129);
# - layer decay 0.60 over the 30 blocks rescaled to a 12-block equivalent,
#   d_eff = 0.60^(13/31); a patch merge shares the id of the block before it
#   (util/lr_decay.py:23-29,68-79); no decay for 1-D params, the absolute
#   table and the relative tables (util/lr_decay.py:36).
_base_ = './mae_vit-base-p16_ft-100e_in1k.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='iTPNBackbone',
        arch='base',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.15,
        use_rel_pos_bias=True,
        out_indices=(2, ),  # the stride-16 map of the main stage
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=dict(_delete_=True, type='PoolNormNeck', in_channels=512),
    head=dict(in_channels=512))
optim_wrapper = dict(
    optimizer=dict(lr=4e-4 * 1024 / 256),
    paramwise_cfg=dict(layer_decay_rate=0.60, rescale_depth=12))
# warm-up from 0, lr reached at its end (util/lr_sched.py:9-16)
param_scheduler = [
    dict(type='LinearWarmupLR', start_factor=0., by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    # the floor scaled by each group's layer decay like its lr
    # (itpn_pixel util/lr_sched.py:14-18)
    dict(type='LayerDecayCosineAnnealingLR', by_epoch=True, begin=5,
         eta_min=5e-6, convert_to_iter_based=True),
]
