from .compat import (init_cpu_process_group, load_local_checkpoint,
                     patch_mmengine_checkpoint_loading)
from .model_builder import build_model_from_config

__all__ = [
    'build_model_from_config', 'init_cpu_process_group', 'load_local_checkpoint',
    'patch_mmengine_checkpoint_loading'
]
