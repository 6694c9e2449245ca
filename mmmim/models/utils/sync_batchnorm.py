"""SyncBatchNorm that also synchronises on CPU (gloo).

torch's ``SyncBatchNorm`` raises for CPU tensors in a distributed run (its
kernels are CUDA/XPU only), so a model whose BatchNorm must be synchronised
(SIM's token BatchNorm) could not be trained or tested with CPU processes.
``PortableSyncBN`` keeps torch's implementation wherever torch has one and,
on CPU, gathers the per-channel count, sum and sum of squares with an
autograd-aware ``all_reduce``: the forward normalises with the statistics of
the global batch and the backward carries every process's gradient through
them, as torch's kernel does.
"""
import torch
import torch.distributed as dist
from torch.distributed.nn.functional import all_reduce

from mmpretrain.registry import MODELS


@MODELS.register_module('PortableSyncBN')
class PortableSyncBN(torch.nn.SyncBatchNorm):
    """``torch.nn.SyncBatchNorm`` with a gloo (CPU) path.

    Same parameters, buffers and state-dict keys as torch's class; mmengine
    reverts it to BatchNorm in non-distributed runs like any SyncBN. Use it
    as ``norm_cfg=dict(type='PortableSyncBN')``.
    """

    def _cpu_sync_needed(self, x: torch.Tensor) -> bool:
        return (self.training and x.device.type == 'cpu'
                and dist.is_available() and dist.is_initialized()
                and dist.get_world_size(self.process_group) > 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._cpu_sync_needed(x):
            return super().forward(x)
        self._check_input_dim(x)
        channels = x.shape[1]
        reduce_dims = [0] + list(range(2, x.dim()))
        # float64 sums: E[x^2] - E[x]^2 loses digits in float32
        x64 = x.double()
        local = torch.cat([
            x64.sum(reduce_dims), (x64 * x64).sum(reduce_dims),
            x64.new_tensor([x.numel() / channels])
        ])
        group = self.process_group or dist.group.WORLD
        total = all_reduce(local, op=dist.ReduceOp.SUM, group=group)
        count = total[-1]
        mean = total[:channels] / count
        var = (total[channels:2 * channels] / count - mean * mean).clamp_min(0)

        if self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = (1.0 / self.num_batches_tracked.item()
                      if self.momentum is None else self.momentum)
            with torch.no_grad():
                unbiased = var * count / (count - 1).clamp_min(1)
                self.running_mean.mul_(1 - factor).add_(
                    factor * mean.to(self.running_mean.dtype))
                self.running_var.mul_(1 - factor).add_(
                    factor * unbiased.to(self.running_var.dtype))

        shape = [1, channels] + [1] * (x.dim() - 2)
        out = (x64 - mean.view(shape)) * torch.rsqrt(
            var.view(shape) + self.eps)
        out = out.to(x.dtype)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


__all__ = ['PortableSyncBN']
