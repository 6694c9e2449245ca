"""Updates HPM's EMA teacher after every optimiser step."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class HPMTeacherHook(Hook):
    """Call ``model.update_teacher()`` after every training iteration.

    The optimiser step happens inside ``train_step``, before any
    ``after_train_iter`` hook, so the teacher always averages the freshly
    updated student. The momentum's schedule position is read by the target
    generator from the runner's message hub (``RuntimeInfoHook``); the
    teacher is a submodule, so checkpoints carry it and resume is exact.
    NORMAL priority runs before ``CheckpointHook`` (VERY_LOW), so an
    iteration-based checkpoint holds the updated teacher.
    """

    priority = 'NORMAL'

    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_train(self, runner) -> None:
        if not hasattr(self._model(runner), 'update_teacher'):
            raise TypeError('HPMTeacherHook needs a model with '
                            'update_teacher() (e.g. HPMPretrainer)')

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        tau = self._model(runner).update_teacher()
        runner.message_hub.update_scalar('train/teacher_momentum', tau)
