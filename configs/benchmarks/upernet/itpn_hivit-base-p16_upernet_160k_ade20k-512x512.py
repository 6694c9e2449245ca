# UperNet with iTPN on ADE20K, the reference recipe (sunsmarterjie/iTPN,
# seg/configs/itpn/pixel_upernet_itpn_base_12_512_slide_160k_ade20k_pt2ft.py):
# the pre-trained pyramid's levels concatenated with the backbone maps of
# the same stride (256 + 128 = 384 ch at stride 4, 256 + 256 = 512 at 8,
# 256 + 512 = 768 at 16, and a 2x max-pool of the stride-16 one at 32;
# seg/backbone/iTPN.py:392-417). Backbone and pyramid load from one iTPN
# pre-training checkpoint (prefix 'backbone.' / 'neck.').
#   tools/dist_train.sh configs/benchmarks/upernet/<this file> 8 \
#     --cfg-options model.backbone.init_cfg.checkpoint=<ckpt> \
#                   model.neck.init_cfg.checkpoint=<ckpt>
# Values (the config above unless noted):
# - backbone at 512 px with relative position bias (:38) on the 32 x 32 grid,
#   the absolute table kept at 14 x 14 (seg/backbone/iTPN.py:212-216) and
#   interpolated to the input at every forward (:330-347), drop path 0.1
#   (:39), pyramid width 256 and depth 2 (:34-35), LayerNorm eps 1e-5
#   (torch's default, iTPN.py:184; the config passes no norm_layer);
# - UPerHead on [384, 512, 768, 768] with 768 channels, FCN auxiliary head on
#   the stride-16 map (:42-50;
#   seg/configs/_base_/models/upernet_beit.py:28-52);
#   slide test 512 / 341 (:51);
# - AdamW lr 3e-5, (0.9, 0.999), wd 0.05 (:60) under the reference's
#   iTPNLayerDecayOptimizerConstructor with num_layers 30, rate 0.90 (:61-62):
#   ids over the flat block list (patch merges counted: 1..32), patch
#   embedding and absolute table 0, everything else 31, and the rate raised
#   to 13 / 32 (seg/mmcv_custom/itpn_layer_decay_optimizer_constructor.py:
#   6-15,35,60-61); no decay for 1-D params and biases only: the absolute and
#   relative position tables ARE decayed (:43, bare names vs backbone.*);
# - 160k iterations, warm-up 1500 iterations from 1e-6 x lr, poly (power 1)
#   to 0 (:64-68); total batch 16 = 8 GPUs x 2 (:70-71); fp16 (:73-84).
_base_ = './mae_vit-base-p16_upernet_160k_ade20k-512x512.py'
norm_cfg = dict(type='SyncBN', requires_grad=True)
ln = dict(type='LN', eps=1e-5)
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.iTPNBackbone',
        arch='base',
        img_size=512,
        patch_size=16,
        drop_path_rate=0.1,
        use_rel_pos_bias=True,
        pos_embed_size=14,
        norm_cfg=ln,
        out_indices=(0, 1, 2),
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=dict(
        _delete_=True,
        type='mmpretrain.iTPNPyramidNeck',
        in_channels=512,
        fpn_dim=256,
        fpn_depth=2,
        norm_cfg=ln,
        out_mode='uper',
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='neck.')),
    decode_head=dict(in_channels=[384, 512, 768, 768], channels=768),
    auxiliary_head=dict(in_channels=768, in_index=2))
optim_wrapper = dict(
    optimizer=dict(lr=3e-5),
    paramwise_cfg=dict(
        _delete_=True,
        # the reference's rescale: rate ** (13 / (num_layers + 2))
        layer_decay_rate=0.90**(13 / 32),
        layer_id_rule='flat',
        num_layers=30,
        no_decay_names=()))
