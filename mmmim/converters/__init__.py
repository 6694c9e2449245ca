"""Key maps between reference checkpoints and mmmim's, in both directions."""
from .key_mapping import KeyMap, check_against_model, load_reference_checkpoint
from .vit import MAE_KEYMAP, SIMMIM_KEYMAP, VIT_BLOCK_RENAMES

__all__ = [
    'KeyMap', 'check_against_model', 'load_reference_checkpoint',
    'MAE_KEYMAP', 'SIMMIM_KEYMAP', 'VIT_BLOCK_RENAMES'
]
