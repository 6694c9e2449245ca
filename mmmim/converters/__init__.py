"""Key maps between reference checkpoints and mmmim's, in both directions."""
from .key_mapping import (REFERENCE_SAFE_GLOBALS, KeyMap, check_against_model,
                          load_reference_checkpoint)
from .vit import (HPM_KEYMAP, MAE_KEYMAP, SIMMIM_KEYMAP, VIT_BLOCK_RENAMES,
                  VIT_KEYMAPS)

__all__ = [
    'KeyMap', 'REFERENCE_SAFE_GLOBALS', 'check_against_model',
    'load_reference_checkpoint', 'HPM_KEYMAP', 'MAE_KEYMAP', 'SIMMIM_KEYMAP',
    'VIT_BLOCK_RENAMES', 'VIT_KEYMAPS'
]
