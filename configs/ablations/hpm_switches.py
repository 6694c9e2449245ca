# HPM's design switches at demo scale (400 x 128 images): the loss-prediction
# loss, the easy-to-hard ramp, the hard ratio and who predicts.
#   python tools/analysis/ablate.py configs/ablations/hpm_switches.py
_base_ = ['./_base_/mae_budget.py']
base = 'configs/demo/hpm_fashion-mnist.py'
title = 'HPM: loss prediction, ramp, hard ratio, teacher'
paper = ('HPM ablations (ViT-B, ImageNet): the relative (ranking) loss '
         'beats MSE on the losses; easy-to-hard (ramped) mining beats a '
         'fixed hard ratio from the start; a hard ratio of 0.5 of the '
         'masked patches is best; predictions of the EMA teacher are used '
         'for mining.')
_hpm = {'model.target_generator.momentum_warmup': 100}
points = [
    dict(name='hpm', label='relative, ramp, 0.5, teacher', options=_hpm),
    dict(name='mse', label='MSE loss prediction', options=dict(
        _hpm, **{'model.loss_predictor.loss':
                 dict(type='HPMStandardizedMSELoss')})),
    dict(name='fixed', label='fixed hard ratio 0.5', options=dict(
        _hpm, **{'model.target_generator.guide': False})),
    dict(name='hard0.25', label='hard ratio 0.25', options=dict(
        _hpm, **{'model.target_generator.hard_ratio': 0.25})),
    dict(name='hard1.0', label='hard ratio 1.0', options=dict(
        _hpm, **{'model.target_generator.hard_ratio': 1.0})),
    dict(name='student', label='student predictions', options=dict(
        _hpm, **{'model.target_generator.predictor': 'student'})),
]
