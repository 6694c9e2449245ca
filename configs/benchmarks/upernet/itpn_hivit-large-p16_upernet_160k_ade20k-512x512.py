# UperNet with iTPN-L on ADE20K (sunsmarterjie/iTPN,
# seg/configs/itpn/pixel_upernet_itpn_large_12_512_slide_160k_ade20k_pt2ft.py):
# the HiViT-B recipe (itpn_hivit-base-p16_upernet_160k_ade20k-512x512.py:
# pyramid depth 2, relative position bias, absolute table at 14 x 14, AdamW
# 3e-5, wd 0.05, 160k iterations, batch 16, fp16) with
# - HiViT-L: width 768, 2 + 2 MLP blocks, 40 attention blocks, 12 heads
#   (:27-31), drop path 0.2 (:38);
# - UPerHead on [448, 640, 1024, 1024] (pyramid 256 + backbone 192 / 384 /
#   768 / 768 channels, :42), FCN auxiliary head on 1024 (:47);
# - layer decay 0.95 with num_layers 44 (:61) under the reference
#   constructor: ids over the flat block list (patch merges counted: 1..46),
#   patch embedding and absolute table 0, everything else 45, the rate
#   raised to 13 / 46 (seg/mmcv_custom/itpn_layer_decay_optimizer_constructor.
#   py:6-15,35,60-61).
#   tools/dist_train.sh configs/benchmarks/upernet/<this file> 8 \
#     --cfg-options model.backbone.init_cfg.checkpoint=<ckpt> \
#                   model.neck.init_cfg.checkpoint=<ckpt>
_base_ = './itpn_hivit-base-p16_upernet_160k_ade20k-512x512.py'

model = dict(
    backbone=dict(arch='large', drop_path_rate=0.2),
    neck=dict(in_channels=768),
    decode_head=dict(in_channels=[448, 640, 1024, 1024]),
    auxiliary_head=dict(in_channels=1024))
optim_wrapper = dict(
    paramwise_cfg=dict(layer_decay_rate=0.95**(13 / 46), num_layers=44))
