# iTPN HiViT-L (width 768, 2 + 2 MLP blocks, 40 attention blocks, 12 heads),
# pixel targets, 800 epochs (itpn_pixel/PRETRAIN.md:19: the base command with
# itpn_large_dec512d8b, models/models_itpn_mim.py:256-261); pyramid and
# decoder as for the base model (the pyramid reads 768 / 384 / 192-wide stage
# features).
_base_ = './itpn-base_pixel_800e.py'

model = dict(
    backbone=dict(arch='large'),
    neck=dict(in_channels=768))
