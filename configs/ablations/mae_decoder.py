# MAE decoder depth and width at demo scale (the demo: 2 blocks, 96 wide).
#   python tools/analysis/ablate.py configs/ablations/mae_decoder.py
_base_ = ['./_base_/mae_budget.py']
base = 'configs/demo/mae_fashion-mnist.py'
title = 'MAE: decoder depth and width'
paper = ('MAE table 1a/1b (ViT-L): fine-tuning is insensitive to the '
         'decoder (84.8-85.0), linear probing rises with depth (1 block '
         '65.5 -> 8 blocks 73.5) and width (128: 69.1 -> 512: 73.5).')
evaluation = dict(finetune=dict(iters=200, batch_size=64))
points = [
    dict(name='d1_w96', label='1 x 96', options={'model.neck.decoder_depth': 1}),
    dict(name='d2_w96', label='2 x 96 (demo)', options={}),
    dict(name='d4_w96', label='4 x 96', options={'model.neck.decoder_depth': 4}),
    dict(name='d2_w48', label='2 x 48', options={
        'model.neck.decoder_embed_dim': 48, 'model.neck.decoder_num_heads': 2}),
    dict(name='d2_w192', label='2 x 192', options={
        'model.neck.decoder_embed_dim': 192}),
]
