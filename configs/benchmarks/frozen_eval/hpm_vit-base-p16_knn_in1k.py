# HPM ViT-B/16 ImageNet kNN evaluation (HPM main_knn.py, run as
# scripts/knn.sh:1-7), DINO's weighted kNN as the reference intends: frozen
# encoder, cls token after the final norm (global_pool=False:
# main_knn.py:250-253), l2-normalised features, k in 10, 20, 100, 200,
# temperature 0.07, votes weighted by exp(cos / T), top-1 and top-5
# (main_knn.py:155-196, 359-362); every image Resize(256, bicubic) +
# CenterCrop(224) (main_knn.py:218-223).
#   python tools/analysis/frozen_feature_eval.py \
#       configs/benchmarks/frozen_eval/hpm_vit-base-p16_knn_in1k.py \
#       --checkpoint work_dirs/.../epoch_800.pth --device cuda
# The published main_knn.py does not run as released (it reads
# args.input_size, which its parser lacks, and `dataset.target`, and its
# shuffled, drop_last training loader would misalign features and labels);
# this config follows its evident DINO protocol with the training images
# in order and none dropped.
default_scope = 'mmpretrain'
custom_imports = dict(imports=['mmmim'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        num_classes=1000,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='MaskedViT',
        arch='base',
        img_size=224,
        patch_size=16,
        pos_embed_type='learnable',  # the checkpoint's table
        final_norm=True,
        out_type='cls_token',
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=None,
    head=None)

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
data_root = 'data/imagenet'
train_dataloader = dict(  # the kNN bank
    batch_size=128,
    num_workers=8,
    dataset=dict(type='ImageNet', data_root=data_root, split='train',
                 pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=128,
    num_workers=8,
    dataset=dict(type='ImageNet', data_root=data_root, split='val',
                 pipeline=test_pipeline))

frozen_eval = dict(type='knn', ks=(10, 20, 100, 200), temperature=0.07,
                   topk=(1, 5))
