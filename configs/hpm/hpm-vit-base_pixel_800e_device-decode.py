# HPM ViT-B/16, 800 epochs (./hpm-vit-base_pixel_800e.py, the reference
# recipe) with the JPEGs decoded, cropped and flipped on the GPU, as
# ../mae/mae-vit-base_pixel_1600e_device-decode.py explains (docs/gpu.md,
# section 5). The same crops and flips as the base config's pipeline for the
# same random draws (HPM's masks are drawn by the model).
_base_ = ['./hpm-vit-base_pixel_800e.py',
          '../_base_/datasets/imagenet_device_decode.py']

train_pipeline = [
    {{_base_.device_decode_crop}},
    dict(type='PackInputs', meta_keys={{_base_.device_decode_meta_keys}}),
]
train_dataloader = dict(
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(pipeline=train_pipeline))
data_preprocessor = dict(type='DeviceDecodeDataPreprocessor')
