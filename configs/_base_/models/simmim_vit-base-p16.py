# SimMIM ViT-B/16 (docs/mae_simmim.md): no absolute pos embed, shared relative
# position bias, layer scale 0.1, q/v bias, drop path 0.1, mask token replaces
# masked patches; 1x1 conv + PixelShuffle decoder; masked L1 / (sum M + 1e-5) / 3.
model = dict(
    type='SimMIMPretrainer',
    mask_ratio=0.6,
    backbone=dict(
        type='SimMIMViT',
        arch='base',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.1,
        use_abs_pos_emb=False,
        use_rel_pos_bias=False,
        use_shared_rel_pos_bias=True,
        layer_scale_init_value=0.1,
        out_type='featmap'),
    neck=dict(type='SimMIMLinearDecoder', in_channels=768, encoder_stride=16),
    head=dict(
        type='SimMIMHead',
        patch_size=16,
        loss=dict(type='MaskedPixelL1Loss', channel=3, eps=1e-5)))
