# iTPN HiViT-B fine-tuning on ImageNet (METHODS.md s.5): mean pooling +
# fc_norm + linear head, relative position bias switched on (new tables,
# reported as missing when loading the pixel pre-training checkpoint),
# drop-path 0.15, layer decay 0.60 over the 30 blocks rescaled to a 12-block
# equivalent (d_eff = 0.60^(13/31)); the rest of MAE's recipe.
_base_ = './mae_vit-base-p16_ft-100e_in1k.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='iTPNBackbone',
        arch='base',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.15,
        use_rel_pos_bias=True,
        out_indices=(2, ),  # the stride-16 map of the main stage
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=dict(_delete_=True, type='PoolNormNeck', in_channels=512),
    head=dict(in_channels=512))
optim_wrapper = dict(
    paramwise_cfg=dict(layer_decay_rate=0.60, rescale_depth=12))
