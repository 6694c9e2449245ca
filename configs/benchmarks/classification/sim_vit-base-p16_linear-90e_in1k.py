# SIM ViT-B/16 linear probe: frozen encoder (no final norm), global average
# pool of the patch tokens, BatchNorm1d (no affine) + Linear.
_base_ = './mae_vit-base-p16_linear-90e_in1k.py'
model = dict(
    backbone=dict(final_norm=False, out_type='featmap', sincos_layout='yx'),
    # A list of necks builds an nn.Sequential: GAP, then BN (no affine).
    neck=[
        dict(type='GlobalAveragePooling'),
        dict(type='ClsBatchNormNeck', input_features=768, affine=False,
             eps=1e-6),
    ])
