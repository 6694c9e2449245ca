# MAE ViT-B/16, 1600 epochs (./mae-vit-base_pixel_1600e.py, the reference
# recipe) with the JPEGs decoded on the GPU: the data workers read the files
# and draw the crop boxes and flips; DeviceDecodeDataPreprocessor decodes
# (nvJPEG), crops, resizes (antialiased bicubic, as Pillow) and flips on the
# device. For machines whose cores cannot decode as fast as the GPU trains
# (docs/benchmarks.md, "Feeding the step"). The same crops, flips and masks
# as the base config's pipeline for the same random draws; pixels within
# about a grey level of it (docs/gpu.md, section 5). Three changes:
_base_ = ['./mae-vit-base_pixel_1600e.py',
          '../_base_/datasets/imagenet_device_decode.py']

# 1. one transform in place of LoadImageChecked + RandomResizedCrop +
#    RandomFlip, and the crop box / flip packed for the preprocessor
train_pipeline = [
    {{_base_.device_decode_crop}},
    dict(type='RandomMaskGenerator', input_size=224, patch_size=16,
         mask_ratio=0.75),
    dict(type='PackInputs', algorithm_keys=['mask'],
         meta_keys={{_base_.device_decode_meta_keys}}),
]
# 2. the files' bytes differ in length: a list, not a stacked batch
train_dataloader = dict(
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(pipeline=train_pipeline))
# 3. decoding on the model's device (mean, std, to_rgb from the base config)
data_preprocessor = dict(type='DeviceDecodeDataPreprocessor')
