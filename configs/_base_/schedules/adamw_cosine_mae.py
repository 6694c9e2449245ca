# MAE's optimisation, shared by MAE, HPM, SIM and iTPN-pixel pre-training
# (each with its own base lr and batch):
# - AdamW (0.9, 0.95), wd 0.05 (mae main_pretrain.py:179-180);
# - no decay for 1-D parameters and biases only: timm 0.3.2's
#   add_weight_decay without a skip list, so the cls / mask tokens (and any
#   learnable position table) ARE decayed (mae main_pretrain.py:178-179);
# - lr = base_lr x total_batch / 256 (mae main_pretrain.py:169-170), linear
#   warm-up from 0 that reaches lr at the first step after it, then
#   half-cosine to min_lr 0, set every iteration (mae util/lr_sched.py:9-16):
#   mmmim's LinearWarmupLR (mmengine's LinearLR cannot start at 0 and reaches
#   lr one step early);
# - fp16 autocast + dynamic loss scaling (mae main_pretrain.py:182).
# The cosine runs to the end of training: a config changes the length with
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
        flat_decay_mult=0.0))

warmup_epochs = 40
param_scheduler = [
    dict(
        type='LinearWarmupLR',
        start_factor=0.0,
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
