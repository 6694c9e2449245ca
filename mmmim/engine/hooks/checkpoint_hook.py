"""mmengine's CheckpointHook, made safe against a crash during a save."""
import os
import os.path as osp
import re

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from mmpretrain.registry import HOOKS


class _DeferredRemoval:
    """A file backend whose ``remove`` / ``rmtree`` wait for :meth:`run`."""

    def __init__(self, backend):
        self._backend = backend
        self._pending = []

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def remove(self, path):
        self._pending.append((self._backend.remove, path))

    def rmtree(self, path):
        self._pending.append((self._backend.rmtree, path))

    def run(self):
        for remove, path in self._pending:
            remove(path)
        self._pending.clear()


def write_file_atomically(path: str, text: str) -> None:
    """Replace ``path`` by a file holding ``text``: readers see the old or
    the new content, never a part of it."""
    tmp = f'{path}.tmp-{os.getpid()}'
    with open(tmp, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` that never leaves the work dir without a resumable
    checkpoint.

    mmengine's hook removes the checkpoints beyond ``max_keep_ckpts`` before
    it writes the new one, so with ``max_keep_ckpts=1`` a crash (or
    ``kill -9``, or a full disk) during the save leaves nothing to resume.
    Here the removals wait until the new checkpoint is complete (the runner,
    ``ResilientRunner``, writes it under a temporary name and renames it).
    ``last_checkpoint`` names the checkpoint relative to the work dir (a
    copied work dir resumes its own copy), written atomically.

    ``ResilientRunner`` (``tools/train.py``) uses this hook wherever a config
    asks for ``CheckpointHook``; the arguments are the same.
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process() and isinstance(self.out_dir, str) and \
                osp.isdir(self.out_dir):
            remove_stale_temporaries(self.out_dir)

    def _save_checkpoint_with_step(self, runner, step, meta):
        backend = self.file_backend
        deferred = self.file_backend = _DeferredRemoval(backend)
        try:
            super()._save_checkpoint_with_step(runner, step, meta)
        finally:
            self.file_backend = backend
        # the new checkpoint is complete: the outdated ones may go now
        deferred.run()
        if is_main_process() and self.last_ckpt is not None:
            write_file_atomically(
                osp.join(runner.work_dir, 'last_checkpoint'),
                relative_to_work_dir(str(self.last_ckpt), runner.work_dir))


def remove_stale_temporaries(directory: str) -> None:
    """Remove checkpoints half-written by processes that no longer run
    (``NAME.tmp-PID``, see ``ResilientRunner.save_checkpoint``)."""
    for name in os.listdir(directory):
        match = re.match(r'^.+\.pth\.tmp-(\d+)$', name)
        if match and not _process_exists(int(match.group(1))):
            os.remove(osp.join(directory, name))


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def relative_to_work_dir(path: str, work_dir: str) -> str:
    """``path`` relative to ``work_dir`` when it lies inside it (local
    files), else unchanged."""
    if '://' in path:
        return path
    path = osp.abspath(path)
    relative = osp.relpath(path, osp.abspath(work_dir))
    return path if relative.startswith(os.pardir) else relative
