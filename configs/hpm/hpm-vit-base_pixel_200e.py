# HPM ViT-B/16, 200 epochs (the setting of the paper's MAE comparison):
# total batch 2048 (8 GPUs x 256), lr 1.5e-4 x 2048 / 256; otherwise the
# 800-epoch recipe. The easy-to-hard ramp spans the 200 epochs.
_base_ = ['./hpm-vit-base_pixel_800e.py']

train_dataloader = dict(batch_size=256)  # x 8 GPUs = 2048
optim_wrapper = dict(optimizer=dict(lr=1.5e-4 * 2048 / 256))
auto_scale_lr = dict(base_batch_size=2048)

max_epochs = 200
warmup_epochs = 40
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min=0.0, by_epoch=True, begin=warmup_epochs, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
