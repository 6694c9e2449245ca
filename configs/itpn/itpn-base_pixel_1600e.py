# iTPN HiViT-B, pixel targets, 1600 epochs (85.5 top-1 after fine-tuning in
# the paper); otherwise identical to itpn-base_pixel_800e.py.
_base_ = './itpn-base_pixel_800e.py'

warmup_epochs = 40
max_epochs = 1600
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min=0.0, by_epoch=True, begin=warmup_epochs, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
