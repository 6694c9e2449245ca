# MAE reconstruction targets at demo scale. The PCA basis is fitted on the
# demo's training images first (prepare). dVAE tokens need a tokenizer
# weights file that is not shipped (nothing is downloaded): uncomment the
# last point and set its checkpoint to a local DALL-E encoder state dict.
#   python tools/analysis/ablate.py configs/ablations/mae_target.py
_base_ = ['./_base_/mae_budget.py']
base = 'configs/demo/mae_fashion-mnist.py'
title = 'MAE: reconstruction target'
paper = ('MAE table 1d (ViT-L, fine-tuning, as reported): pixels without norm 84.9, '
         'with per-patch norm 85.4, PCA coefficients 84.6, dVAE tokens '
         '85.3: normalised pixels are best.')
evaluation = dict(finetune=dict(iters=200, batch_size=64))
pca_file = 'work_dirs/ablations/_data/pca_mae-demo_p4.npz'
prepare = [
    dict(creates=pca_file,
         command=['tools/analysis/fit_mim_targets.py', 'pca',
                  'configs/demo/mae_fashion-mnist.py', '--patch-size', '4',
                  '--num-images', '4000', '--out', pca_file])
]
points = [
    dict(name='pixel', label='pixels', options={'model.head.norm_pix': False}),
    dict(name='norm_pix', label='norm. pixels', options={}),
    # 6 of the 48 dimensions of a 4x4x3 patch: MAE's 96 of 768
    dict(name='pca6', label='PCA (6 of 48)', options={
        'model.neck.predict_feature_dim': 6,
        'model.head': dict(
            _delete_=True, type='MIMTargetHead', criterion='L2', eps=0.,
            patch_size=4,
            target=dict(type='PatchPCATarget', basis=pca_file, patch_size=4,
                        num_components=6))}),
    # dict(name='dvae', label='dVAE tokens', options={
    #     'model.neck.predict_feature_dim': 8192,
    #     'model.head': dict(
    #         _delete_=True, type='MIMTargetHead', patch_size=4, eps=0.,
    #         target=dict(type='DVAETokenTarget', stride=4,
    #                     checkpoint='/path/to/dalle_encoder.pth',
    #                     mean=[72.94] * 3, std=[90.02] * 3))}),
]
