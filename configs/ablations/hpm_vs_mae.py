# HPM against MAE at equal budget (400 x 128 images, the same ViT, decoder
# and data) and equal target (pixels without / with per-patch norm).
#   python tools/analysis/ablate.py configs/ablations/hpm_vs_mae.py
_base_ = ['./_base_/mae_budget.py']
base = 'configs/demo/hpm_fashion-mnist.py'
title = 'HPM vs MAE (equal budget, equal target)'
paper = ('HPM (Wang et al., CVPR 2023): at equal epochs and the same target '
         'HPM improves on MAE on ImageNet fine-tuning; an HPM iteration '
         'costs more (teacher pass + loss predictor).')
evaluation = dict(finetune=dict(iters=200, batch_size=64))
_hpm = {'model.target_generator.momentum_warmup': 100}
points = [
    dict(name='mae_pixel', label='MAE, pixels',
         base='configs/demo/mae_fashion-mnist.py',
         options={'model.head.norm_pix': False}),
    dict(name='hpm_pixel', label='HPM, pixels', options=_hpm),
    dict(name='mae_normpix', label='MAE, norm. pixels',
         base='configs/demo/mae_fashion-mnist.py', options={}),
    dict(name='hpm_normpix', label='HPM, norm. pixels',
         options=dict(_hpm, **{'model.head.norm_pix': True})),
]
