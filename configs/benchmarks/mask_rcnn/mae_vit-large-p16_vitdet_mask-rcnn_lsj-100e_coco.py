# ViTDet Mask R-CNN with a pre-trained ViT-L/16 (MAE / HPM / SIM): the ViT-B
# recipe with ViTDet's large settings (detectron2 @02b5c4e
# projects/ViTDet/configs/COCO/mask_rcnn_vitdet_l_100ep.py:14-23): width 1024,
# 24 blocks, 16 heads, drop path 0.4, global attention in blocks 5, 11, 17,
# 23 (window attention elsewhere), layer decay 0.8 over 24 blocks; same
# data, optimiser and 100-epoch schedule.
_base_ = './mae_vit-base-p16_vitdet_mask-rcnn_lsj-100e_coco.py'

model = dict(
    backbone=dict(
        arch='large',
        drop_path_rate=0.4,
        window_block_indexes=[
            0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 18, 19, 20,
            21, 22
        ]),
    neck=dict(in_channels=1024))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.8))
