# UperNet with a pre-trained plain ViT-B/16 (MAE / HPM / SIM encoders) on
# ADE20K: the protocol of mmseg's MAE config, which MAE's segmentation numbers
# come from (mmseg 1.2.2 configs/mae/mae-base_upernet_8xb2-amp-160k_ade20k-
# 512x512.py, "mae-base..." below, and configs/_base_/models/upernet_mae.py):
# - ViT-B/16 at 512 px, drop path 0.1, layer scale initialised to 1.0 on both
#   branches (init_values=1.0; new parameters, reported missing when
#   loading), outputs of blocks 4, 6, 8, 12 (mae-base...:10-20), no final norm
#   (upernet_mae.py:13-28); Feature2Pyramid (4, 2, 1, 0.5) with SyncBN,
#   UPerHead 768 wide, FCN auxiliary head on the third map (mae-base...:21-24,
#   upernet_mae.py:29-54); slide test 512 / 341 (mae-base...:25);
# - AdamW lr 1e-4, (0.9, 0.999), wd 0.05, layer decay 0.65 over 12 blocks
#   (mae-base...:27-33) under mmseg's LayerDecayOptimizerConstructor: no decay
#   for 1-D params and biases only; the position table and cls token ARE
#   decayed (its list holds bare names while the parameters are backbone.*,
#   mmseg/engine/optimizers/layer_decay_optimizer_constructor.py:134-135);
# - 160k iterations, warm-up 1500 iterations from 1e-6 x lr, then poly
#   (power 1) to 0 (mae-base...:35-46); total batch 16 = 8 GPUs x 2 (:51-52).
# Kept deviation: mmseg's file sets the MMSeg 0.x key `fp16` (:48-49), which
# MMSeg 1.x ignores (it trains in fp32); fp16 (AmpOptimWrapper) here, as the
# file's name ('amp') intends; optim_wrapper.type=OptimWrapper gives fp32.
# Runs in mmseg's scope; mmmim parts are `mmpretrain.<Name>`.
#   tools/dist_train.sh configs/benchmarks/upernet/<this file> 8 \
#     --cfg-options model.backbone.init_cfg.checkpoint=<pre-training ckpt>
_base_ = [
    'mmseg::_base_/models/upernet_mae.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]
custom_imports = dict(imports=['mmmim'], allow_failed_imports=False)

crop_size = (512, 512)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='mmpretrain.MaskedViT',
        arch='base',
        img_size=512,
        patch_size=16,
        drop_path_rate=0.1,
        layer_scale_init_value=1.0,
        pos_embed_type='learnable',  # loaded from the checkpoint, then tuned
        out_indices=(3, 5, 7, 11),
        final_norm=False,
        out_type='featmap',
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=dict(
        type='Feature2Pyramid', embed_dim=768, rescales=[4, 2, 1, 0.5],
        norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=[768, 768, 768, 768], channels=768, num_classes=150,
        norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=768, num_classes=150, norm_cfg=norm_cfg),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999),
                   weight_decay=0.05),
    constructor='MIMLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.65, no_decay_names=()))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
         end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=160000,
         by_epoch=False),
]
train_dataloader = dict(batch_size=2)  # x 8 GPUs = 16
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
auto_scale_lr = dict(enable=False, base_batch_size=16)
