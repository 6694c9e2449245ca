# MAE: the encoder with mask tokens, and the loss on all patches.
#   python tools/analysis/ablate.py configs/ablations/mae_encoder_loss.py
_base_ = ['./_base_/mae_budget.py']
base = 'configs/demo/mae_fashion-mnist.py'
title = 'MAE: mask tokens in the encoder, loss on all patches'
paper = ('MAE table 1c (ViT-L): encoder with [M] 84.2 FT / 59.6 linear vs '
         'without 84.9 / 73.5 (and 3.3x the encoder FLOPs); sec. 3: the '
         'loss on all pixels costs about 0.5 % fine-tuning accuracy.')
evaluation = dict(finetune=dict(iters=200, batch_size=64))
points = [
    dict(name='mae', label='MAE (drop, masked loss)', options={}),
    dict(name='encoder_mask_token', label='encoder w/ [M]', options={
        'model.backbone.mask_mode': 'replace'}),
    dict(name='loss_all', label='loss on all patches', options={
        'model.head': dict(
            _delete_=True, type='MIMTargetHead', criterion='L2', eps=0.,
            patch_size=4, loss_on='all',
            target=dict(type='PixelTarget', norm_patch_size=4))}),
]
