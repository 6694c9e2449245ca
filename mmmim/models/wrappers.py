"""The DDP wrapper for mmmim's algorithms."""
from mmengine.model import MMDistributedDataParallel

from mmpretrain.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class MIMDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that runs the model's own ``train_step``.

    mmengine's DDP wrapper has a ``train_step`` of its own (preprocess,
    forward, ``update_params``), so whatever a model adds to its
    ``train_step`` (mmmim's non-finite loss check, the opt-in compile) would
    not run under DDP. This wrapper hands the step to the model's
    ``train_step`` with itself as ``ddp_wrapper``: the forward still goes
    through DDP, so the gradients are averaged over the ranks as before.
    Models without that argument get mmengine's step.
    ``mmmim.engine.ResilientRunner`` (``tools/train.py``) uses it in place of
    ``MMDistributedDataParallel``.
    """

    def train_step(self, data, optim_wrapper):
        if getattr(self.module, 'accepts_ddp_wrapper', False):
            return self.module.train_step(data, optim_wrapper,
                                          ddp_wrapper=self)
        return super().train_step(data, optim_wrapper)
