# MAE ViT-B/16 (docs/mae_simmim.md): encoder sees visible patches only,
# 8-block 512-wide decoder, masked per-patch MSE with norm_pix.
model = dict(
    type='MAEPretrainer',
    mask_ratio=0.75,
    backbone=dict(
        type='MaskedViT',
        arch='base',
        img_size=224,
        patch_size=16,
        mask_mode='drop',
        pos_embed_type='sincos',
        sincos_layout='xy'),
    neck=dict(
        type='MAEDecoder',
        num_patches=196,
        patch_size=16,
        in_chans=3,
        embed_dim=768,
        decoder_embed_dim=512,
        decoder_depth=8,
        decoder_num_heads=16,
        mlp_ratio=4.),
    head=dict(
        type='MAEPretrainHead',
        norm_pix=True,
        patch_size=16,
        loss=dict(type='PixelReconstructionLoss', criterion='L2')))
