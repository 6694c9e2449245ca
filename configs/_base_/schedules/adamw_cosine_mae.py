# MAE's optimisation (also HPM's, SIM's and iTPN-pixel's, with their own base lr):
# AdamW (0.9, 0.95), wd 0.05 except 1-D params / biases / tokens / pos embeds,
# lr = base_lr * total_batch / 256, linear warm-up from ~0 then half-cosine to 0,
# stepped every iteration. The cosine runs to the end of training
# (train_cfg.max_epochs): a config changes the length with
#   train_cfg = dict(max_epochs=1600)
base_lr = 1.5e-4
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(
        type='AdamW', lr=base_lr * 4096 / 256, betas=(0.9, 0.95),
        weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={
            'pos_embed': dict(decay_mult=0.),
            'mask_token': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
        }))

warmup_epochs = 40
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    # no `end` / `T_max`: the Runner ends it at train_cfg.max_epochs
    dict(
        type='CosineAnnealingLR',
        eta_min=0.0,
        by_epoch=True,
        begin=warmup_epochs,
        convert_to_iter_based=True),
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=800)
# the learning rates above are written for a total batch of 4096
auto_scale_lr = dict(base_batch_size=4096)
