# HPM ViT-B/16, 200 epochs (the setting of the paper's MAE comparison):
# total batch 2048 (8 GPUs x 256), lr 1.5e-4 x 2048 / 256; otherwise the
# 800-epoch recipe. The easy-to-hard ramp spans the 200 epochs.
_base_ = ['./hpm-vit-base_pixel_800e.py']

train_dataloader = dict(batch_size=256)  # x 8 GPUs = 2048
optim_wrapper = dict(optimizer=dict(lr=1.5e-4 * 2048 / 256))
auto_scale_lr = dict(base_batch_size=2048)

train_cfg = dict(max_epochs=200)
