import itertools
import os
from pathlib import Path
from typing import Dict

import pytest
import torch

import mmmim  # noqa: F401  (registers components)

FASHION_MNIST_ROOT = '/usr/share/datasets/fashion-mnist'
OFFICIAL_KEYS = Path(__file__).resolve().parent / 'data' / 'official_keys'

# deterministic cuBLAS for the exact-resume test on a GPU; read when CUDA
# starts, so set before any test runs
os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')

_SCOPE_IDS = itertools.count()
_RUN_IDS = itertools.count()

# The suite is sized for 2 CPU cores; keep torch from oversubscribing them.
torch.set_num_threads(min(2, os.cpu_count() or 1))

# GPU tests carry the `cuda` marker (`pytest -m cuda` runs them; so does
# tools/gpu_check.sh). Without a CUDA device they are deselected at collection
# (reported as deselected, not skipped: on the README's CPU install nothing
# skips); DEVICES runs a test on the CPU everywhere and on the GPU where there
# is one.
DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.cuda)]


def cuda_only(test):
    """Mark a test as GPU-only (``cuda`` marker)."""
    return pytest.mark.cuda(test)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    gpu = [item for item in items if item.get_closest_marker('cuda')]
    if gpu:
        config.hook.pytest_deselected(items=gpu)
        items[:] = [item for item in items
                    if not item.get_closest_marker('cuda')]


def require_fashion_mnist():
    """Fail (not skip) without the Fashion-MNIST files the README's install
    provides."""
    if not os.path.isfile(
            os.path.join(FASHION_MNIST_ROOT, 't10k-images-idx3-ubyte.gz')):
        pytest.fail(f'Fashion-MNIST is missing from {FASHION_MNIST_ROOT}: '
                    'install the Debian package dataset-fashion-mnist '
                    '(bash tools/install.sh does)')


@pytest.fixture
def fashion_mnist():
    require_fashion_mnist()


requires_fashion_mnist = pytest.mark.usefixtures('fashion_mnist')


def official_shapes(name: str) -> Dict[str, tuple]:
    """Parameter name -> shape of a reference release, in file order
    (``tests/data/official_keys/<name>.txt``)."""
    shapes = {}
    for line in (OFFICIAL_KEYS / f'{name}.txt').read_text().splitlines():
        key, shape = line.split('\t')
        shapes[key] = tuple(eval(shape))
    return shapes


@pytest.fixture(autouse=True)
def _seed_and_scope():
    """Every test starts seeded and in mmpretrain's scope (downstream tests
    switch the default scope to mmdet / mmseg)."""
    from mmengine.registry import DefaultScope
    torch.manual_seed(0)
    DefaultScope.get_instance(f'mmmim-test-{next(_SCOPE_IDS)}',
                              scope_name='mmpretrain')


@pytest.fixture(autouse=True, scope='session')
def _quiet_init_logs():
    """mmengine logs every parameter's init at INFO outside a Runner."""
    from mmengine.logging import MMLogger
    MMLogger.get_instance('mmengine').setLevel('WARNING')


@pytest.fixture(autouse=True)
def _unique_runner_names(monkeypatch):
    """Give every Runner its own experiment name.

    mmengine names a run by its start time to the second and keys its
    MessageHub (which holds, e.g., the CheckpointHook's list of checkpoints
    to keep) by that name: two runners started within one second, as on a
    fast machine, would share one and delete each other's checkpoints.
    """
    from mmengine.runner import Runner
    original = Runner.__init__

    def init(self, *args, **kwargs):
        if kwargs.get('experiment_name') is None:
            kwargs['experiment_name'] = f'mmmim-test-run-{next(_RUN_IDS)}'
        original(self, *args, **kwargs)

    monkeypatch.setattr(Runner, '__init__', init)
