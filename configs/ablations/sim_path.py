# SIM's path from MAE to SIM at demo scale (configs/demo/sim_fashion-mnist.py
# at 400 x 128 images): pixel -> feature target, same -> different views,
# weak -> strong augmentation, dense / global / both losses.
#   python tools/analysis/ablate.py configs/ablations/sim_path.py
base = 'configs/demo/sim_fashion-mnist.py'
title = 'SIM: from MAE to SIM'
paper = ('SIM (Tao et al., CVPR 2023) table 1: starting from MAE-like '
         'pixel prediction of the same view, predicting momentum features '
         'of a different, strongly augmented view adds linear-probe '
         'accuracy step by step while keeping fine-tuning; the dense loss '
         'is needed for dense tasks, the global one helps linear probing.')
common = {
    'train_cfg.max_iters': 400,
    'param_scheduler.0.end': 40,
    'param_scheduler.1.begin': 40,
    'param_scheduler.1.T_max': 360,
    'param_scheduler.1.end': 400,
}
_weak = {'pipeline:SIMTwoViews.view1_pipeline': [],
         'pipeline:SIMTwoViews.view2_pipeline': []}
_same = dict(_weak, **{'pipeline:SIMTwoViews.same_crop': True})
points = [
    dict(name='pixel_same_weak', label='pixel, same view, weak aug',
         options=dict(_same, **{'model.head.target': 'pixel',
                                'model.head.patch_size': 8})),
    dict(name='feat_same_weak', label='feature, same view, weak aug',
         options=_same),
    dict(name='feat_diff_weak', label='feature, diff. views, weak aug',
         options=_weak),
    dict(name='sim_dense', label='+ strong aug (SIM, dense)', options={}),
    dict(name='sim_global', label='SIM, global loss', options={
        'model.head.loss.mode': 'global'}),
    dict(name='sim_both', label='SIM, dense + global', options={
        'model.head.loss.mode': 'both'}),
]
