# iTPN HiViT-B, pixel targets, 1600 epochs: the command of
# itpn_pixel/PRETRAIN.md:8-15 (85.5 top-1 after fine-tuning in the paper);
# otherwise identical to itpn-base_pixel_800e.py.
_base_ = './itpn-base_pixel_800e.py'

train_cfg = dict(max_epochs=1600)
