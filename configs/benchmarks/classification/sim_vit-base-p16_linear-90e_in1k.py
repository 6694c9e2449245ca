# SIM ViT-B/16 linear probe, exactly the reference's head
# (Siamese-Image-Modeling configs/linprobe/dist_linprobe_sim_base.sh:20-33,
# main_linprobe.py): frozen encoder without final norm, mean of the patch
# tokens (--global_pool), the fine-tuning model's fc_norm LayerNorm (eps
# 1e-6) freshly initialised and frozen (models_vit.py:202-207, 223-227;
# main_linprobe.py:236-253), BatchNorm1d (no affine, eps 1e-6) + Linear
# (trunc-normal 0.01); LARS, blr 0.1 x 16384 / 256, 90 epochs (the MAE
# probe's schedule).
_base_ = './mae_vit-base-p16_linear-90e_in1k.py'
model = dict(
    backbone=dict(final_norm=False, out_type='featmap', sincos_layout='yx'),
    # A list of necks builds an nn.Sequential: GAP + frozen fresh LN, BN.
    neck=[
        dict(type='PoolNormNeck', in_channels=768, eps=1e-6, frozen=True),
        dict(type='ClsBatchNormNeck', input_features=768, affine=False,
             eps=1e-6),
    ])
