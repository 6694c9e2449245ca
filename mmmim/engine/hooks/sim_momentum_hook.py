"""Cosine momentum schedule of SIM's momentum branch, driven by the runner."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class SIMMomentumHook(Hook):
    """Sets ``model.momentum = 1 - (1/2)(1 + cos(pi t / E))(1 - m0)`` before
    every training iteration (``model.schedule_momentum``, e.g.
    ``SIMPretrainer``).

    ``t / E`` is ``runner.iter / runner.max_iters``: in an epoch-based loop
    that is the fractional epoch over the number of epochs, as in the
    reference (``data_iter_step / len(loader) + epoch``). ``runner.iter`` is
    restored on resume, so the schedule continues where it stopped.

    Args:
        base_momentum (float, optional): ``m0``; None uses the model's
            ``base_momentum``.
    """
    priority = 'NORMAL'

    def __init__(self, base_momentum: float = None) -> None:
        self.base_momentum = base_momentum

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        model.schedule_momentum(runner.iter / runner.max_iters,
                                self.base_momentum)
