# SimMIM prediction heads at demo scale (configs/demo/simmim_fashion-mnist.py
# at 400 x 128 images).
#   python tools/analysis/ablate.py configs/ablations/simmim_head.py
_base_ = ['./_base_/mae_budget.py']
base = 'configs/demo/simmim_fashion-mnist.py'
title = 'SimMIM: prediction head'
paper = ('SimMIM (abstract, head table): the prediction head can be as light '
         'as a linear layer, with no worse performance than heavier ones '
         '(2-layer MLP, inverse Swin), at a fraction of the cost.')
points = [
    dict(name='linear', label='linear (SimMIM)', options={}),
    dict(name='mlp2', label='2-layer MLP', options={
        'model.neck': dict(_delete_=True, type='SimMIMDecoder',
                           in_channels=128, encoder_stride=4,
                           num_layers=2, hidden_channels=512)}),
    dict(name='inv_swin', label='inverse Swin (2 stages)', options={
        'model.neck': dict(_delete_=True, type='InverseSwinDecoder',
                           in_channels=128, encoder_stride=4,
                           embed_dims=128, depths=(2, 2), num_heads=(4, 2),
                           window_size=4)}),
]
