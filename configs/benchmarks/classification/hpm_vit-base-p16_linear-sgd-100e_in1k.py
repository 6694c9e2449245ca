# HPM ViT-B/16 linear probe, the reference script (HPM scripts/linprob.sh:
# 3-9, main_linprob.py): frozen encoder, cls token after the final norm
# (global_pool off: main_linprob.py:66-67), BatchNorm1d (no affine, eps 1e-6)
# + Linear (trunc-normal 0.01) (main_linprob.py:210-216), SGD momentum 0.9
# without weight decay (main_linprob.py:256-261; not MAE's LARS), total batch
# 2048 (4 GPUs x 512), blr 1e-3 (lr = 1e-3 x 2048 / 256), 100 epochs,
# 10 warm-up epochs then half-cosine to 0 per iteration (main_linprob.py:
# 58-61, util/lr_sched.py:11-17), RandomResizedCrop(224, bicubic) with
# MAE's single-draw sampler (util/crop.py, main_linprob.py:31,128) + flip
# (main_linprob.py:127-130).
_base_ = './mae_vit-base-p16_linear-90e_in1k.py'

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SingleDrawRandomResizedCrop', scale=224, backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [  # main_linprob.py:132-136
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=512,  # x 4 GPUs = 2048
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=512, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    optimizer=dict(type='SGD', lr=1e-3 * 2048 / 256, momentum=0.9,
                   weight_decay=0.0))
train_cfg = dict(max_epochs=100)  # the cosine ends there
auto_scale_lr = dict(base_batch_size=2048)
