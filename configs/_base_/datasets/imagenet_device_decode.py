# Decoding on the GPU (docs/gpu.md, section 5): the pieces a pre-training
# config with MAE's augmentation (RandomResizedCrop 224, 0.2-1, bicubic, and
# a horizontal flip) changes to decode its JPEGs on the model's device; see
# ../../mae/mae-vit-base_pixel_1600e_device-decode.py.

# in place of LoadImageChecked + RandomResizedCrop + RandomFlip: the workers
# read the file and draw the crop box and the flip (the same random calls)
device_decode_crop = dict(
    type='DeviceDecodeRandomResizedCrop',
    scale=224,
    crop_ratio_range=(0.2, 1.0),
    backend='pillow',
    interpolation='bicubic',
    flip_prob=0.5)
# PackInputs' meta_keys: what the data preprocessor crops and flips with
device_decode_meta_keys = ['img_path', 'ori_shape', 'img_shape', 'flip',
                           'crop_bbox']
