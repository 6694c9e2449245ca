"""No checkpoint runs code: a crafted ``.pth`` whose pickle calls
``os.system`` is refused by every loading path (resume, load_from, init_cfg,
each converter, each tool) and runs nothing, while real checkpoints load
(see also tests/test_exact_resume.py: every method resumes exactly through
the weights-only unpickler). The opt-ins do unpickle it."""
import importlib.util
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmmim.engine import ResilientRunner
from mmmim.utils.checkpoint import (TRUST_ENV, UnsafeCheckpointError,
                                    history_buffer_getattr,
                                    load_checkpoint_file)
from mmpretrain.registry import MODELS

from .conftest import requires_fashion_mnist
from .test_training_runner import write_tiny_config

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(embed_dims=32, num_layers=1, num_heads=2, feedforward_channels=64)


class _Payload:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


@pytest.fixture
def crafted(tmp_path, monkeypatch):
    """A checkpoint with real weights and a payload; the marker must never
    appear (checked after the test)."""
    monkeypatch.delenv(TRUST_ENV, raising=False)
    marker = tmp_path / 'payload_ran'
    cfg = Config.fromfile(str(write_tiny_config(tmp_path)))
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    path = tmp_path / 'crafted.pth'
    torch.save(dict(meta=dict(note=_Payload(marker)),
                    state_dict=model.state_dict()), path)
    yield path, marker
    assert not marker.exists(), 'the payload ran'


def _tool(relpath):
    spec = importlib.util.spec_from_file_location(
        Path(relpath).stem, str(ROOT / relpath))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _assert_names_the_opt_ins(error, path):
    text = str(error)
    assert str(path) in text and 'posix.system' in text
    assert TRUST_ENV in text and '--trust-checkpoint' in text


def test_payload_runs_when_trusted_and_is_refused_otherwise(crafted):
    path, marker = crafted
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint_file(str(path))
    _assert_names_the_opt_ins(err.value, path)
    assert not marker.exists()
    # the payload is live: the opt-in runs it (so the refusals above and
    # below are what kept it from running)
    load_checkpoint_file(str(path), trusted=True)
    assert marker.exists()
    marker.unlink()


def test_environment_opt_in_covers_mmengine_and_mmmim_paths(
        crafted, monkeypatch):
    path, marker = crafted
    monkeypatch.setenv(TRUST_ENV, '1')
    load_checkpoint_file(str(path))
    assert marker.exists()
    marker.unlink()
    from mmengine.runner import CheckpointLoader
    with pytest.warns(UserWarning, match=TRUST_ENV):
        CheckpointLoader.load_checkpoint(str(path))
    assert marker.exists()
    marker.unlink()


@requires_fashion_mnist
@pytest.mark.parametrize('runner_type', [Runner, ResilientRunner])
@pytest.mark.parametrize('resume', [False, True])
def test_runner_load_from_and_resume_refuse(crafted, tmp_path, resume,
                                            runner_type):
    path, _ = crafted
    cfg = Config.fromfile(str(write_tiny_config(tmp_path)))
    cfg.work_dir = str(tmp_path / 'run')
    cfg.load_from = str(path)
    cfg.resume = resume
    runner = runner_type.from_cfg(cfg)
    with pytest.raises(pickle.UnpicklingError, match='posix.system') as err:
        runner.train()
    if runner_type is ResilientRunner:  # tools/train.py's runner
        _assert_names_the_opt_ins(err.value, path)


@requires_fashion_mnist
def test_train_tool_resume_refuses(crafted, tmp_path):
    path, _ = crafted
    proc = subprocess.run(
        [sys.executable, str(ROOT / 'tools/train.py'),
         str(write_tiny_config(tmp_path)), '--work-dir',
         str(tmp_path / 'run'), '--resume', str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert 'posix.system' in proc.stderr, proc.stderr[-3000:]


@requires_fashion_mnist
def test_test_tool_refuses_and_names_the_opt_ins(crafted, tmp_path):
    path, _ = crafted
    tool = _tool('tools/test.py')
    cfg = Config.fromfile(str(write_tiny_config(tmp_path)))
    # a test loop is not needed: loading comes first
    cfg.test_dataloader = cfg.train_dataloader
    cfg.test_cfg = dict(type='TestLoop')
    cfg.test_evaluator = dict(type='DumpResults', out_file_path=str(
        tmp_path / 'out.pkl'))
    cfg_path = tmp_path / 'test_cfg.py'
    cfg.dump(str(cfg_path))
    with pytest.raises(UnsafeCheckpointError) as err:
        tool.main([str(cfg_path), str(path), '--work-dir',
                   str(tmp_path / 'test')])
    _assert_names_the_opt_ins(err.value, path)


def test_init_cfg_pretrained_refuses(crafted):
    path, _ = crafted
    init_default_scope('mmpretrain')
    for vit_type, error in (('MaskedViT', UnsafeCheckpointError),
                            ('VisionTransformer', pickle.UnpicklingError)):
        # mmmim's checked loading and, for mmpretrain's own ViT,
        # mmengine's PretrainedInit
        vit = MODELS.build(dict(
            type=vit_type, arch=TINY, img_size=16, patch_size=4,
            init_cfg=dict(type='Pretrained', checkpoint=str(path),
                          prefix='backbone.')))
        with pytest.raises(error, match='posix.system'):
            vit.init_weights()


def test_clip_teacher_refuses(crafted):
    path, _ = crafted
    with pytest.raises(UnsafeCheckpointError, match='posix.system'):
        MODELS.build(dict(type='iTPNCLIPTeacher', checkpoint=str(path)))


CONVERTERS = [
    ('tools/model_converters/vit_to_mmmim.py', ['mae']),
    ('tools/model_converters/vit_to_mmmim.py', ['simmim']),
    ('tools/model_converters/mmmim_to_vit.py', ['mae']),
    ('tools/model_converters/sim_to_mmmim.py', []),
    ('tools/model_converters/hpm_to_mmmim.py', []),
    ('tools/model_converters/itpn_to_mmmim.py', []),
    ('tools/model_converters/extract_backbone.py', []),
]


@pytest.mark.parametrize('tool,head', CONVERTERS)
def test_every_converter_refuses(crafted, tmp_path, tool, head):
    path, _ = crafted
    out = tmp_path / 'out.pth'
    with pytest.raises(UnsafeCheckpointError) as err:
        _tool(tool).main(head + [str(path), str(out)])
    _assert_names_the_opt_ins(err.value, path)
    assert not out.exists()


@requires_fashion_mnist
@pytest.mark.parametrize('tool,config', [
    ('tools/analysis/visualize_reconstruction.py',
     'configs/demo/mae_fashion-mnist.py'),
    ('tools/analysis/visualize_hpm.py', 'configs/demo/hpm_fashion-mnist.py'),
])
def test_picture_tools_refuse(crafted, tmp_path, tool, config):
    path, _ = crafted
    with pytest.raises(UnsafeCheckpointError, match='posix.system'):
        _tool(tool).main([str(ROOT / config), str(path), '--out',
                          str(tmp_path / 'x.png')])


@requires_fashion_mnist
def test_evaluate_representation_refuses(crafted, tmp_path):
    path, _ = crafted
    from .test_representation_eval import _write_config
    tool = _tool('tools/analysis/evaluate_representation.py')
    with pytest.raises(UnsafeCheckpointError, match='posix.system'):
        tool.main([_write_config(tmp_path), '--checkpoint', str(path),
                   '--num-train', '20', '--num-test', '10', '--no-linear'])


class _ReachForInit:
    """Asks the allow-listed ``getattr`` for more than a statistics
    method."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


def test_allow_listed_getattr_gives_only_history_buffer_statistics(
        tmp_path):
    assert history_buffer_getattr(HistoryBuffer, 'mean') is \
        HistoryBuffer.mean
    for obj, name in ((HistoryBuffer, '__init__'), (HistoryBuffer, 'update'),
                      (os, 'system'), (torch, 'load')):
        with pytest.raises(UnsafeCheckpointError):
            history_buffer_getattr(obj, name)
    path = tmp_path / 'reach.pth'
    torch.save({'x': _ReachForInit()}, path)
    with pytest.raises(pickle.UnpicklingError, match='__init__'):
        load_checkpoint_file(str(path))


def test_torchscript_archives_need_the_opt_in(tmp_path):
    path = tmp_path / 'scripted.pt'
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 3)), str(path))
    with pytest.raises(UnsafeCheckpointError, match='TorchScript'):
        load_checkpoint_file(str(path))
    module = load_checkpoint_file(str(path), trusted=True)
    assert module.state_dict()['weight'].shape == (3, 2)


def test_plain_state_dicts_and_numpy_values_load(tmp_path):
    import numpy as np
    path = tmp_path / 'plain.pth'
    buffer = HistoryBuffer()
    buffer.update(1.5)
    payload = dict(state_dict={'w': torch.ones(2)}, step=np.int64(3),
                   arr=np.arange(4, dtype=np.float32), log=buffer)
    torch.save(payload, path)
    out = load_checkpoint_file(str(path))
    assert out['step'] == 3 and out['arr'].tolist() == [0., 1., 2., 3.]
    assert out['log'].mean() == 1.5
    # object arrays are not numbers: refused
    torch.save({'arr': np.array(['a', 1], dtype=object)}, path)
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint_file(str(path))


def test_frozen_feature_eval_refuses(crafted, tmp_path):
    import shutil
    from .test_frozen_eval import _image_folder, _tiny_config
    path, _ = crafted
    _image_folder(str(tmp_path))
    cfg = _tiny_config(tmp_path, 'hpm_vit-base-p16_knn_in1k.py', None)
    tool = _tool('tools/analysis/frozen_feature_eval.py')
    with pytest.raises(UnsafeCheckpointError, match='posix.system'):
        tool.main([cfg, '--checkpoint', str(path)])
    # saved features are read the same way
    feats = tmp_path / 'feats'
    feats.mkdir()
    shutil.copy(path, feats / 'train.pt')
    with pytest.raises(UnsafeCheckpointError, match='posix.system'):
        tool.main([cfg, '--load-features', str(feats)])
