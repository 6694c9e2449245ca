# MAE mask ratio sweep at demo scale.
#   python tools/analysis/ablate.py configs/ablations/mae_mask_ratio.py
_base_ = ['./_base_/mae_budget.py']
base = 'configs/demo/mae_fashion-mnist.py'
title = 'MAE: mask ratio'
paper = ('MAE (He et al., CVPR 2022) fig. 5, ViT-L, 800 epochs: fine-tuning '
         'is nearly flat from 40 % to 80 % masking, linear probing rises '
         'steadily up to 75 % and drops beyond; 75 % is the default.')
x_label = 'mask ratio'
evaluation = dict(finetune=dict(iters=200, batch_size=64))
points = [
    dict(name=f'r{ratio:.2f}', x=ratio, options={
        'model.mask_ratio': ratio,
        'pipeline:RandomMaskGenerator.mask_ratio': ratio,
    }) for ratio in (0.25, 0.5, 0.75, 0.9)
]
