# iTPN HiViT-L (width 768, 2 + 2 MLP blocks, 40 attention blocks, 12 heads)
# with a frozen CLIP ViT-B/16 teacher, 300 epochs: the reference's "iTPN-L/16
# using CLIP-B" command (sunsmarterjie/iTPN, itpn_clip/README.md:58-73):
# model clip_tpn_large_2240_patch16_224 (:63; itpn_clip/modeling_pretrain.py:
# 322-327: fpn_dim 256, fpn_depth 1), drop path 0.2 (:67), 300 epochs (:68);
# batch, lr, betas, eps, layer scale 0.1 and the teacher at 224 as the base
# command (itpn-base_clip_300e.py). The auxiliary branch reads the main
# stage after int(0.75 * 40) + 1 = 31 blocks (modeling_pretrain.py:255) and
# its two blocks are 768 wide with 12 heads (:181-186).
#   tools/dist_train.sh configs/itpn/itpn-large_clip_300e.py 8 \
#       --cfg-options model.target_generator.checkpoint=/path/ViT-B-16.pt
_base_ = './itpn-base_clip_300e.py'

model = dict(
    early_layers=31,
    backbone=dict(arch='large', drop_path_rate=0.2),
    neck=dict(in_channels=768),
    head=dict(embed_dim=768, num_heads=12))
