# HPM ViT-B/16, 800 epochs, the reference recipe (Haochen-Wang409/HPM):
# MAE encoder + reconstruction decoder + loss predictor (8 x 512, 16 heads),
# EMA teacher mining hard patches easy-to-hard, relative loss-prediction loss
# (scripts/pretrain_base.sh:16).
# - total batch 256 = 8 GPUs x 32 (scripts/pretrain_base.sh:1,3), base lr
#   1.5e-4 x 256 / 256, wd 0.05, 800 epochs, 40 warm-up (:9-11), mask 0.75
#   (:8);
# - pixel targets WITHOUT norm_pix: the scripts never pass --norm_pix_loss
#   (main_pretrain.py:59-61);
# - teacher momentum 0.999 -> 0.9999 over the first 100 epochs, updated after
#   every optimiser step (engine_pretrain.py:40-44,130-131);
# - MAE's optimiser, weight-decay rule (timm add_weight_decay,
#   main_pretrain.py:253-255) and schedule:
#   ../_base_/schedules/adamw_cosine_mae.py.
_base_ = [
    '../_base_/models/mae_vit-base-p16.py',
    '../_base_/datasets/imagenet_mae.py',
    '../_base_/schedules/adamw_cosine_mae.py',
    '../_base_/default_runtime.py',
]

# MAE's encoder and reconstruction decoder (the base model), plus:
model = dict(
    type='HPMPretrainer',
    target='pixel',
    head=dict(norm_pix=False),
    loss_predictor=dict(
        type='LossPredictorHead',
        embed_dims=512,
        depth=8,
        num_heads=16,
        mlp_ratio=4.,
        out_channels=16 * 16 * 3,
        loss=dict(type='HPMRelativeLoss')),
    target_generator=dict(
        type='HPMTarget',
        hard_ratio=0.5,
        guide=True,
        by_iter=False,
        base_momentum=0.999,
        final_momentum=0.9999,
        momentum_warmup=100))

# the teacher is updated after every optimiser step
custom_hooks = [dict(type='HPMTeacherHook')]

train_dataloader = dict(batch_size=32)  # x 8 GPUs = 256
# gradients clipped at norm 5: the loop passes no clip_grad to HPM's loss
# scaler, whose default is 5. (engine_pretrain.py:125-126, util/misc.py:256;
# MAE's scaler defaults to None); unscaled before clipping, as there
optim_wrapper = dict(clip_grad=dict(max_norm=5.0),
                     optimizer=dict(lr=1.5e-4 * 256 / 256))
auto_scale_lr = dict(base_batch_size=256)
