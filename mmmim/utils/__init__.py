from .checkpoint import (UnsafeCheckpointError, add_trust_checkpoint_argument,
                         explain_unsafe_checkpoint, load_checkpoint_file,
                         load_checkpoint_into, unwrap_state_dict)
from .compat import init_cpu_process_group
from .model_builder import build_model_from_config

__all__ = [
    'UnsafeCheckpointError', 'add_trust_checkpoint_argument',
    'build_model_from_config', 'explain_unsafe_checkpoint',
    'init_cpu_process_group', 'load_checkpoint_file', 'load_checkpoint_into',
    'unwrap_state_dict'
]
