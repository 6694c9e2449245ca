from .compat import (init_cpu_process_group, load_local_checkpoint,
                     patch_mmengine_checkpoint_loading)

__all__ = [
    'init_cpu_process_group', 'load_local_checkpoint',
    'patch_mmengine_checkpoint_loading'
]
