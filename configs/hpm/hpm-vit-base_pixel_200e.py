# HPM ViT-B/16, 200 epochs (the setting of the paper's MAE comparison):
# PRETRAIN.md:5-20 trains 8 GPUs x 32 images x 8 accumulation steps = 2048
# per step for 200 epochs with 40 warm-up epochs and base lr 1.5e-4; here
# 8 GPUs x 256 without accumulation (the same total batch, lr and steps).
# Otherwise the 800-epoch recipe; the easy-to-hard ramp spans the 200 epochs.
_base_ = ['./hpm-vit-base_pixel_800e.py']

train_dataloader = dict(batch_size=256)  # x 8 GPUs = 2048
optim_wrapper = dict(optimizer=dict(lr=1.5e-4 * 2048 / 256))
auto_scale_lr = dict(base_batch_size=2048)

train_cfg = dict(max_epochs=200)
