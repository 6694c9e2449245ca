"""Mixed precision by autocast alone: bf16 on any device, the CPU included."""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper

from mmpretrain.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward runs under ``torch.autocast``.

    mmengine's ``AmpOptimWrapper`` is for accelerators only. bf16 has the
    exponent range of fp32, so it needs no loss scaling: this wrapper only
    enters autocast on the device the model's parameters are on.
    ``tools/train.py --amp`` uses it on a machine without a GPU.

    Args:
        dtype (str | torch.dtype): ``'bfloat16'`` (default). fp16 needs loss
            scaling: use ``AmpOptimWrapper``.
        Other arguments are those of ``OptimWrapper``.
    """

    def __init__(self, *args, dtype='bfloat16', **kwargs):
        super().__init__(*args, **kwargs)
        self.cast_dtype = getattr(torch, dtype) if isinstance(dtype,
                                                              str) else dtype
        if self.cast_dtype == torch.float16:
            raise ValueError('fp16 autocast needs loss scaling: use '
                             'AmpOptimWrapper')

    @contextmanager
    def optim_context(self, model):
        device = next(model.parameters()).device.type
        with super().optim_context(model), torch.autocast(
                device, dtype=self.cast_dtype):
            yield
