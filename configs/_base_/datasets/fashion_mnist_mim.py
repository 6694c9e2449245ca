# Fashion-MNIST (Debian package dataset-fashion-mnist) for quick pre-training
# demos and tests: 28 x 28 grey images resized to `img_size` and replicated to
# 3 channels by the dataset; light crop + flip augmentation.
img_size = 32
data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[72.94, 72.94, 72.94],
    std=[90.02, 90.02, 90.02],
    to_rgb=False)

train_pipeline = [
    dict(
        type='RandomResizedCrop',
        scale=img_size,
        crop_ratio_range=(0.5, 1.0),
        backend='cv2',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=128,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='FashionMNISTIDX',
        split='train',
        img_size=img_size,
        pipeline=train_pipeline))
