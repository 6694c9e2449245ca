# SIM ViT-B/16 few-shot evaluation on 1 % of ImageNet labels with logistic
# regression (Siamese-Image-Modeling docs/few_shot.md, configs/few-shot/
# dist_fewshot_sim_base.sh:14-25, main_logistic.py): frozen encoder, the cls
# token of the last block without any norm (forward_features(x)[:, 0] of the
# global-pool ViT, which has no final norm: main_logistic.py:349,
# models_vit.py:199-219); Resize(256, bilinear) + CenterCrop(224)
# (main_logistic.py:129-135); rows centred and l2-normalised
# (main_logistic.py:178, 210); multinomial logistic regression without
# intercept, l2 penalty lambd / n with lambd 0.1 (main_logistic.py:181-193,
# dist_fewshot_sim_base.sh:24). The 1 % split is SimCLR's list of 12811
# training images (Siamese-Image-Modeling imagenet_subset1/1percent.txt, also
# google-research/simclr imagenet_subsets/1percent.txt); put it at
# data/imagenet/1percent.txt or pass
#   --cfg-options train_dataloader.dataset.subset_file=PATH
#   python tools/analysis/frozen_feature_eval.py \
#       configs/benchmarks/frozen_eval/sim_vit-base-p16_logistic-1pct_in1k.py \
#       --checkpoint work_dirs/.../epoch_1600.pth --device cuda
# Deviation: features are extracted in one process, so the reference's
# DistributedSampler padding (a few duplicated training images) is absent.
_base_ = './hpm_vit-base-p16_knn_in1k.py'

model = dict(
    backbone=dict(final_norm=False, sincos_layout='yx'))

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow',
         interpolation='bilinear'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64,
    dataset=dict(
        _delete_=True,
        type='ImageListSubset',
        data_root='data/imagenet',
        data_prefix='train',
        subset_file='data/imagenet/1percent.txt',
        pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=64, dataset=dict(pipeline=test_pipeline))

frozen_eval = dict(_delete_=True, type='logistic', lambd=0.1)
