"""Running the frozen OpenMMLab stack on a CPU-only machine."""
import torch


def init_cpu_process_group(launcher: str, backend: str = 'gloo') -> bool:
    """Start the process group for a CPU-only ``torchrun`` launch.

    mmengine's ``init_dist`` for the pytorch launcher always calls
    ``torch.cuda.set_device``, which fails on a machine without a GPU. When
    there is no GPU, the group is started here with ``gloo`` from torchrun's
    environment; the Runner then sees it is already distributed and skips its
    own initialisation. Returns True when it started a group.
    """
    import torch.distributed as dist
    if (launcher != 'pytorch' or torch.cuda.is_available()
            or not dist.is_available() or dist.is_initialized()):
        return False
    dist.init_process_group(backend=backend)
    return True
