"""Reference MAE and HPM (timm ViT layout) and SimMIM (BEiT layout) <-> mmmim
keys."""
from .key_mapping import KeyMap

# timm / BEiT block names -> mmpretrain's TransformerEncoderLayer names
VIT_BLOCK_RENAMES = [
    ('norm1.', 'ln1.'),
    ('norm2.', 'ln2.'),
    ('mlp.fc1.', 'ffn.layers.0.0.'),
    ('mlp.fc2.', 'ffn.layers.1.'),
]

_MAE_PAIRS = [
    ('cls_token', 'backbone.cls_token'),
    ('pos_embed', 'backbone.pos_embed'),
    ('patch_embed.proj.{x}', 'backbone.patch_embed.projection.{x}'),
    ('blocks.{i}.{b}', 'backbone.layers.{i}.{b}'),
    ('norm.{x}', 'backbone.ln1.{x}'),
    ('mask_token', 'neck.mask_token'),
    ('decoder_pos_embed', 'neck.decoder_pos_embed'),
    ('decoder_embed.{x}', 'neck.decoder_embed.{x}'),
    ('decoder_blocks.{i}.{b}', 'neck.decoder_blocks.{i}.{b}'),
    ('decoder_norm.{x}', 'neck.ln1.{x}'),
    ('decoder_pred.{x}', 'neck.decoder_pred.{x}'),
]

MAE_KEYMAP = KeyMap(_MAE_PAIRS, block_renames=VIT_BLOCK_RENAMES)

# HPM: MAE plus the loss predictor, a second decoder on the same tokens; the
# EMA teacher's ``ema_state_dict`` has the same layout
HPM_KEYMAP = KeyMap(
    _MAE_PAIRS + [
        ('decoder_blocks_losspred.{i}.{b}', 'loss_predictor.blocks.{i}.{b}'),
        ('decoder_norm_losspred.{x}', 'loss_predictor.norm.{x}'),
        ('decoder_pred_losspred.{x}', 'loss_predictor.pred.{x}'),
    ],
    block_renames=VIT_BLOCK_RENAMES)

SIMMIM_KEYMAP = KeyMap(
    [
        ('encoder.cls_token', 'backbone.cls_token'),
        ('encoder.mask_token', 'backbone.mask_token'),
        ('encoder.pos_embed', 'backbone.pos_embed'),
        ('encoder.patch_embed.proj.{x}',
         'backbone.patch_embed.projection.{x}'),
        ('encoder.rel_pos_bias.{x}', 'backbone.rel_pos_bias.{x}'),
        ('encoder.blocks.{i}.{b}', 'backbone.layers.{i}.{b}'),
        ('encoder.norm.{x}', 'backbone.ln1.{x}'),
        ('decoder.{x}', 'neck.decoder.{x}'),
    ],
    block_renames=VIT_BLOCK_RENAMES)

#: the reference layouts tools/model_converters/vit_to_mmmim.py and
#: mmmim_to_vit.py convert, by method
VIT_KEYMAPS = dict(mae=MAE_KEYMAP, simmim=SIMMIM_KEYMAP)
