# HPM on Fashion-MNIST: configs/demo/mae_fashion-mnist.py (the same tiny ViT,
# 32 px, patch 4, 128 wide, 4 deep, decoder 2 x 96, data, optimiser and
# 800 x 128 budget) plus the loss predictor (2 x 96, like the reconstruction
# decoder) and the EMA teacher that mines hard patches (measured run times:
# docs/demo_results.md); the README's main command runs it:
#   bash tools/run_demo.sh
# The run is iteration-based, so the easy-to-hard ramp and the momentum ramp
# are per iteration (by_iter=True), and the momentum is lower than ImageNet's
# (0.98 -> 0.995 over the first quarter) so the teacher follows a short run.
#   python tools/train.py configs/demo/hpm_fashion-mnist.py --work-dir work_dirs/hpm_demo
#   python tools/analysis/evaluate_representation.py configs/demo/hpm_fashion-mnist.py \
#       --checkpoint work_dirs/hpm_demo/iter_800.pth --compare-random-init
_base_ = ['./mae_fashion-mnist.py']
patch_size = 4
decoder_dims = 96

model = dict(
    type='HPMPretrainer',
    target='pixel',
    head=dict(norm_pix=False),  # the reference's default for HPM
    loss_predictor=dict(
        type='LossPredictorHead',
        embed_dims=decoder_dims,
        depth=2,
        num_heads=4,
        out_channels=patch_size * patch_size * 3,
        loss=dict(type='HPMRelativeLoss')),
    target_generator=dict(
        type='HPMTarget',
        by_iter=True,
        base_momentum=0.98,
        final_momentum=0.995,
        momentum_warmup=200))
custom_hooks = [dict(type='HPMTeacherHook')]

# no MaskGenerator: the teacher makes the masks
train_pipeline = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.5, 1.0),
         backend='cv2', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
default_hooks = dict(
    checkpoint=dict(interval=200, max_keep_ckpts=4))
