# SimMIM ViT-B/16 fine-tuning: BEiT-style ViT (no absolute pos embed, layer
# scale 0.1); the shared relative position table of pre-training is copied
# into every block's own table when loading (and resized to the input grid);
# mean pooling + fc_norm; MAE's recipe with layer decay 0.65.
_base_ = './mae_vit-base-p16_ft-100e_in1k.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='SimMIMViT',
        arch='base',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.1,
        use_abs_pos_emb=False,
        use_rel_pos_bias=True,  # one table per block for fine-tuning
        use_shared_rel_pos_bias=False,
        layer_scale_init_value=0.1,
        final_norm=False,
        out_type='avg_featmap',
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')))
