# iTPN: the pyramid in pre-training and multi-stage supervision, at demo
# scale (configs/demo/itpn_fashion-mnist.py at 400 x 128 images).
#   python tools/analysis/ablate.py configs/ablations/itpn_pyramid.py
base = 'configs/demo/itpn_fashion-mnist.py'
title = 'iTPN: pyramid in pre-training, multi-stage supervision'
paper = ('iTPN (Tian et al., CVPR 2023) ablation: pre-training the '
         'feature pyramid together with the backbone, and supervising its '
         'stages with masked feature modeling, each add accuracy on '
         'ImageNet fine-tuning and more on COCO / ADE20K.')
_base_ = ['./_base_/mae_budget.py']  # 400 x 128 images, warm-up 50
_stem = {'model.backbone.mask_mode': 'stem_token'}
points = [
    dict(name='no_pyramid', label='no pyramid (HiViT MAE)', options={
        'model.neck': None,
        'model.decoder.fpn_dim': 128, 'model.decoder.num_levels': 1}),
    dict(name='pyramid', label='pyramid (iTPN pixel)', options={}),
    dict(name='pyramid_stem', label='pyramid, stem mask token',
         options=_stem),
    dict(name='pyramid_mfm', label='pyramid + multi-stage MFM',
         options=dict(_stem, **{
             'model.mfm_head': dict(type='iTPNMFMHead', fpn_dim=64,
                                    target_dims=(128, 64, 32)),
             'model.target_generator': dict(type='iTPNEMATeacher',
                                            momentum=1e-2)})),
    # the two pyramid layouts again with another training seed (the random
    # init of the kNN baseline stays seed 0): how far a point moves by chance
    dict(name='pyramid_seed1', label='pyramid (iTPN pixel), seed 1',
         options={'randomness.seed': 1}),
    dict(name='pyramid_stem_seed1', label='pyramid, stem mask token, seed 1',
         options=dict(_stem, **{'randomness.seed': 1})),
]
