# MAE ViT-B/16 partial fine-tuning (MAE paper sec. 4.3, fig. 9): only the
# last k blocks (plus fc_norm and the head) train; the patch embedding, the
# position / cls tokens and the first 12 - k blocks are frozen and stay in
# eval mode (mmpretrain's `frozen_stages`, kept through train() by
# MaskedViT). k = 12 is full fine-tuning, k = 0 trains the head (and, with
# frozen_stages = depth, freezes fc_norm too: a linear probe on a LayerNorm-ed
# mean-pooled feature). Otherwise the full fine-tuning recipe
# (mae_vit-base-p16_ft-100e_in1k.py); choose k with
#   --cfg-options model.backbone.frozen_stages=<12 - k>
_base_ = './mae_vit-base-p16_ft-100e_in1k.py'
trainable_blocks = 1
model = dict(backbone=dict(frozen_stages=12 - trainable_blocks))
