# iTPN HiViT-L with a frozen CLIP ViT-L/14 teacher, 300 epochs: the
# reference's "iTPN-L/16 using CLIP-L" command (sunsmarterjie/iTPN,
# itpn_clip/README.md:77-96): model clip_tpn_large_2240_patch16_224 (:85),
# drop path 0.2 (:89), `--clip_path ../ViT-L-14.pt` (:88) at
# `--second_input_size 196` (:94); the student as itpn-large_clip_300e.py,
# the teacher (and `--teacher_dim 768`, the command's evident intent) as
# itpn-base_clip-l14_300e.py.
#   tools/dist_train.sh configs/itpn/itpn-large_clip-l14_300e.py 8 \
#       --cfg-options model.target_generator.checkpoint=/path/ViT-L-14.pt
_base_ = './itpn-base_clip-l14_300e.py'

model = dict(
    early_layers=31,
    backbone=dict(arch='large', drop_path_rate=0.2),
    neck=dict(in_channels=768),
    head=dict(embed_dim=768, num_heads=12))
