# SimMIM ViT-B/16 fine-tuning, SimMIM's own recipe (microsoft/SimMIM,
# configs/vit_base__800ep/simmim_finetune__vit_base__img224__800ep.yaml):
# - BEiT-style ViT: no absolute position table, one relative position table
#   per block (the shared pre-training table is copied into each when
#   loading), layer scale, mean pooling + fc_norm (yaml:4-12), drop path 0.1;
# - total batch 2048: 128 per GPU on 16 GPUs (README.md:132-133, config.py:23;
#   8 GPUs x 256 here); lr 1.25e-3, warm-up lr 2.5e-7 and min lr 2.5e-7,
#   each x 2048 / 512 (yaml:18-20, main_finetune.py:322-324);
# - 100 epochs, 20 warm-up (yaml:16-17); timm's CosineLRScheduler over ALL
#   100 epochs (t_initial = all steps, lr_scheduler.py:26-35) without
#   warmup_prefix (timm 0.4.12 scheduler/cosine_lr.py:35,68-73): the cosine
#   phase counts from step 0, so at the end of the warm-up the lr drops to
#   0.905 x lr and then follows cos(pi t / 100). Written here as a warm-up
#   and a cosine over the whole run chained (mmengine multiplies overlapping
#   schedulers): exact after the warm-up; during the warm-up the lr is the
#   reference's times the cosine factor (at most 9 % lower);
# - AdamW (0.9, 0.999), eps 1e-8 (config.py:127-129), wd 0.05 (yaml:21), no
#   decay for 1-D params, biases, pos_embed and cls_token only: the per-block
#   relative position tables ARE decayed (optimizer.py:143-149,
#   models/vision_transformer.py:298-299); layer decay 0.65 (yaml:22) with
#   MAE's layer ids (optimizer.py:81,109-120); grad clip 5.0 (config.py:102);
#   apex O1 fp16;
# - label smoothing 0.1 (config.py:59), RandAugment rand-m9-mstd0.5-inc1
#   (:143; its ColorJitter 0.4 is unused with RandAugment), random erasing
#   0.25 pixel mode (:145-147), mixup 0.8 / cutmix 1.0 / switch 0.5
#   (:151-159); head init trunc-normal(0.02) x 0.001
#   (models/vision_transformer.py:267).
_base_ = './mae_vit-base-p16_ft-100e_in1k.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='SimMIMViT',
        arch='base',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.1,
        use_abs_pos_emb=False,
        use_rel_pos_bias=True,  # one table per block for fine-tuning
        use_shared_rel_pos_bias=False,
        layer_scale_init_value=0.1,
        final_norm=False,
        out_type='avg_featmap',
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')))

train_dataloader = dict(batch_size=256)  # x 8 GPUs = 2048
base_lr = 1.25e-3 * 2048 / 512
optim_wrapper = dict(
    optimizer=dict(lr=base_lr, eps=1e-8),
    clip_grad=dict(max_norm=5.0),
    paramwise_cfg=dict(no_decay_names=('pos_embed', 'cls_token')))
param_scheduler = [
    dict(type='LinearLR', start_factor=2.5e-7 / 1.25e-3, by_epoch=True,
         begin=0, end=20, convert_to_iter_based=True),
    # a cosine over the whole run, chained with the warm-up above
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0,
         eta_min=2.5e-7 * 2048 / 512, convert_to_iter_based=True),
]
auto_scale_lr = dict(base_batch_size=2048)
default_hooks = dict(checkpoint=dict(interval=5))
