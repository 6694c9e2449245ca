# iTPN HiViT-B ImageNet fine-tuning of a CLIP-pre-trained model (e.g. from
# configs/itpn/itpn-base_clip_300e.py), the reference recipe
# (sunsmarterjie/iTPN, itpn_clip/README.md:124-147 with the
# run_itpn_finetuning.py defaults), which differs from the pixel recipe
# (itpn_hivit-base-p16_ft-100e_in1k.py) in:
# - layer scale 0.1 in every block (argparse default, run_itpn_finetuning.py:
#   54, passed as init_values at :307; modeling_finetune.py:101-108: gamma_2
#   only in the MLP blocks), as in the CLIP pre-training;
# - total batch 2048: the command launches 8 nodes x 8 GPUs x 32
#   (README.md:128,131; its `--world_size 4` is overwritten by the launcher's
#   WORLD_SIZE, utils/utils.py:302-304; 8 GPUs x 256 here); lr 5e-4
#   absolute, not scaled with the batch (:136, run_itpn_finetuning.py:
#   392,407); 20 warm-up epochs from 0 (:143, utils/utils.py:446-454), cosine
#   to min lr 1e-6 (run_itpn_finetuning.py:96); drop path 0.1 (:138);
# - the student's inception normalisation, mean = std = 0.5 (datasets.py:
#   128-130, --imagenet_default_mean_and_std not passed), RandAugment fill 128
#   and per-pixel N(0, 1) random erasing in that normalisation;
# - the classifier initialised trunc-normal(0.02) (modeling_finetune.py:
#   286-292; the script's --init_scale is never read).
# Unchanged from the pixel recipe: 100 epochs (:139), layer decay 0.60 over
# the 30 blocks rescaled to d^(13/31) (:141, utils/lr_decay.py:23-29), wd
# 0.05 (:146) off for 1-D params, the absolute table and the relative tables
# (utils/lr_decay.py:36, modeling_finetune.py:297-302), relative position
# bias and the absolute table on (run_itpn_finetuning.py:49-53), mean pooling
# + fc_norm (:148-149), AdamW (0.9, 0.999) eps 1e-8 (:76-79), rand-m9-mstd0.5
# -inc1, erasing 0.25, mixup 0.8, cutmix 1.0, smoothing 0.1 (:107-121,
# README.md:144-145), fp16 (engine_for_finetuning.py:75), no clipping (:80).
#   tools/dist_train.sh configs/benchmarks/classification/<this file> 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=<ckpt>
_base_ = './itpn_hivit-base-p16_ft-100e_in1k.py'

# IMAGENET_INCEPTION_MEAN / STD (0.5, 0.5) in 0-255 units
data_preprocessor = dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5])
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2,
         total_level=10, magnitude_level=9, magnitude_std=0.5,
         hparams=dict(pad_val=[128, 128, 128], interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand',
         min_area_ratio=0.02, max_area_ratio=1 / 3,
         fill_color=[127.5, 127.5, 127.5], fill_std=[127.5, 127.5, 127.5]),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=256, dataset=dict(pipeline=train_pipeline))

model = dict(
    backbone=dict(drop_path_rate=0.1, layer_scale_init_value=0.1),
    head=dict(init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.02)]))
optim_wrapper = dict(optimizer=dict(lr=5e-4))
# warm-up np.linspace(0, lr, warm-up steps) (itpn_clip/utils/utils.py:
# 446-454): lr reached at the last warm-up step
param_scheduler = [
    dict(type='LinearWarmupLR', start_factor=0., linspace=True,
         by_epoch=True, begin=0, end=20,
         convert_to_iter_based=True),
    # the floor scaled by each group's layer decay like its lr
    # (itpn_clip engine_for_finetuning.py:60)
    dict(type='LayerDecayCosineAnnealingLR', by_epoch=True, begin=20,
         eta_min=1e-6, convert_to_iter_based=True),
]
auto_scale_lr = dict(base_batch_size=2048)
