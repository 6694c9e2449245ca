# A positive control for the canvas transfer table (docs/transfer.md 5.3):
# the canvas MAE encoder (configs/demo/mae_canvas.py: ViT 128 wide, 4 blocks,
# patch 8 at 64 px, pixel targets without norm_pix, 400 x 128 images)
# pre-trained on the Fashion-MNIST garments themselves, scaled to 64 px,
# instead of the unlabelled canvases: an encoder that does learn the garment
# classes, with exactly the architecture the canvas Mask R-CNN / UperNet
# configs load (no position-table resizing).
#   python tools/transfer_demo.py table --work-dir work_dirs/tc_garments \
#       --pretrain-config mae=configs/demo/mae_canvas_garments.py --starts mae
_base_ = ['./mae_canvas.py']
img_size = 64
patch_size = 8

# the data set yields decoded arrays: no LoadImageFromFile
train_pipeline = [
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.5, 1.0),
         backend='cv2', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomMaskGenerator', input_size=img_size,
         patch_size=patch_size, mask_ratio=0.75),
    dict(type='PackInputs', algorithm_keys=['mask']),
]
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='FashionMNISTIDX',
        split='train',
        img_size=img_size,
        pipeline=train_pipeline))
