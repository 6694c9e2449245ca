# iTPN pixel pre-training: the reference code's quirks that mmmim reproduces
# by default (docs/itpn.md, "Reference quirks"), turned off one at a time, at
# demo scale (configs/demo/itpn_fashion-mnist.py at 400 x 128 images, the
# budget of configs/ablations/itpn_pyramid.py, whose `pyramid` point is this
# grid's `reference` and is reused).
#   python tools/analysis/ablate.py configs/ablations/itpn_quirks.py
base = 'configs/demo/itpn_fashion-mnist.py'
title = 'iTPN pixel: reference quirks on / off'
paper = ('Not a paper ablation: the reference pre-training code adds a '
         'resampled position table in masked pre-training and keeps '
         "PyTorch's default init for the patch conv and zero relative "
         'position tables (itpn_pixel/models/models_itpn.py:318-335, '
         'models_itpn_mim.py _init_weights). mmmim reproduces both by '
         'default; this grid measures what they do at demo scale.')
_base_ = ['./_base_/mae_budget.py']  # 400 x 128 images, warm-up 50
points = [
    dict(name='reference', label='reference quirks (default)', options={}),
    dict(name='stored_pos', label='stored position table',
         options={'model.backbone.reference_pos_interp': False}),
    dict(name='mae_init', label='xavier patch conv, tables trunc-normal',
         options={'model.backbone.reference_init': False}),
    dict(name='both_off', label='both off', options={
        'model.backbone.reference_pos_interp': False,
        'model.backbone.reference_init': False}),
]
