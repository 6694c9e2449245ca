"""tools/analysis/ablate.py end to end on a 2-point grid with a tiny budget,
and the shipped grids resolve into configs that build."""
import glob
import importlib.util
import json
import os
import os.path as osp

import pytest
from mmengine.config import Config

from mmpretrain.registry import MODELS, TRANSFORMS
from tests.conftest import requires_fashion_mnist

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def ablate():
    spec = importlib.util.spec_from_file_location(
        'ablate_tool', osp.join(ROOT, 'tools/analysis/ablate.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GRID = """
base = 'configs/demo/mae_fashion-mnist.py'
title = 'tiny mask ratio grid'
x_label = 'mask ratio'
common = {
    'train_cfg.max_iters': 2,
    'param_scheduler.0.end': 1,
    'param_scheduler.1.begin': 1,
    'param_scheduler.1.T_max': 1,
    'param_scheduler.1.end': 2,
    'train_dataloader.batch_size': 8,
    'train_dataloader.dataset.num_samples': 64,
}
evaluation = dict(num_train=64, num_test=32, linear=False)
points = [
    dict(name=f'r{r:.2f}', x=r, options={
        'model.mask_ratio': r,
        'pipeline:RandomMaskGenerator.mask_ratio': r}) for r in (0.5, 0.75)
]
"""


@requires_fashion_mnist
def test_two_point_grid_end_to_end_and_resume(tmp_path, capsys):
    grid = tmp_path / 'tiny_grid.py'
    grid.write_text(GRID)
    out = tmp_path / 'out'
    tool = ablate()
    args = [str(grid), '--work-dir', str(out), '--jobs', '2', '--threads',
            '1', '--num-workers', '0', '--poll', '0.5']
    assert tool.main(args) == 0
    for name, ratio, masked in (('r0.50', 0.5, 32), ('r0.75', 0.75, 48)):
        result = json.load(open(out / name / 'result.json'))
        assert result['max_iters'] == 2
        assert result['checkpoint'].endswith('iter_2.pth')
        assert 0 <= result['knn'] <= 100 and 0 <= result['random_knn'] <= 100
        assert result['linear'] is None
        cfg = Config.fromfile(str(out / name / 'config.py'))
        gen = [t for t in cfg.train_dataloader.dataset.pipeline
               if t['type'] == 'RandomMaskGenerator'][0]
        assert gen['mask_ratio'] == ratio
        assert TRANSFORMS.build(gen).num_masked == masked
        assert cfg.model.mask_ratio == ratio
    table = (out / 'results.md').read_text()
    assert '| r0.50 |' in table and '| r0.75 |' in table
    assert '2 of 2 points measured' in table
    assert (out / 'results.png').stat().st_size > 1000
    # resume: finished points are skipped (no worker starts) ...
    capsys.readouterr()
    assert tool.main(args) == 0
    assert '0 to run, 2 already done' in capsys.readouterr().out
    # ... and a point interrupted after its pre-training keeps its
    # checkpoint and only evaluates (run in this process)
    ckpt = json.load(open(out / 'r0.50' / 'result.json'))['checkpoint']
    mtime = os.path.getmtime(ckpt)
    os.remove(out / 'r0.50' / 'result.json')
    grid_cfg = tool.load_grid(str(grid))
    result = tool.run_point(grid_cfg, grid_cfg['points'][0], str(out), 0)
    assert os.path.getmtime(ckpt) == mtime and result['checkpoint'] == ckpt
    assert (out / 'r0.50' / 'result.json').is_file()

    # the fingerprint of the config a point ran with (dumped by the runner)
    # is the one of the config it was built from
    r075 = grid_cfg['points'][1]
    assert tool.point_fingerprint(grid_cfg, r075, 0, str(out / 'r0.75')) \
        == tool.point_fingerprint(grid_cfg, r075, 0) \
        == (out / 'r0.75' / 'fingerprint').read_text().strip()
    assert tool.point_fingerprint(grid_cfg, grid_cfg['points'][0], 0) != \
        tool.point_fingerprint(grid_cfg, r075, 0)

    # another grid with r0.75's experiment (same options, other name and
    # label) reuses its result; a point with other options is not matched
    other = tmp_path / 'other_grid.py'
    other.write_text(GRID.replace(
        "for r in (0.5, 0.75)", "for r in (0.75, 0.25)").replace(
        "name=f'r{r:.2f}'", "name=f'ratio{r}', label=f'ratio {r}'"))
    other_out = tmp_path / 'other_grid'

    def share(*flags):
        args = tool.parse_args([str(other), '--work-dir', str(other_out),
                                '--num-workers', '0', *flags])
        tool.share_measured(args, tool.load_grid(str(other)), str(other_out))

    share()
    reused = json.load(open(other_out / 'ratio0.75' / 'result.json'))
    source = json.load(open(out / 'r0.75' / 'result.json'))
    assert reused['shared_with'] == 'out/r0.75'
    assert reused['knn'] == source['knn'] and reused['name'] == 'ratio0.75'
    assert reused['label'] == 'ratio 0.75'
    assert not (other_out / 'ratio0.25').exists()
    # a third grid reusing the reused point names the measured one
    third = tmp_path / 'third_grid'
    tool.reuse_result(dict(name='p'), str(other_out / 'ratio0.75'),
                      str(third / 'p'))
    assert json.load(open(third / 'p' / 'result.json'))['shared_with'] == \
        'out/r0.75'
    # the reused point carries the fingerprint; the report names its source
    assert (other_out / 'ratio0.75' / 'fingerprint').read_text() == \
        (out / 'r0.75' / 'fingerprint').read_text()
    text = tool.write_report(tool.load_grid(str(other)), str(other_out),
                             [reused], 'cmd')
    assert 'Measured once for several grids' in text
    assert 'ratio 0.75 = out/r0.75' in text
    # --no-reuse: nothing is taken over
    os.remove(other_out / 'ratio0.75' / 'result.json')
    share('--no-reuse')
    assert not (other_out / 'ratio0.75' / 'result.json').exists()


def test_pipeline_options_and_errors():
    tool = ablate()
    cfg = Config.fromfile(osp.join(ROOT, 'configs/demo/sim_fashion-mnist.py'))
    tool.apply_options(cfg, {
        'pipeline:SIMTwoViews.same_crop': True,
        'pipeline:BlockwiseMaskGenerator': dict(
            type='GridMaskGenerator', input_size=32, patch_size=8),
        'model.head.loss.mode': 'both'})
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert pipeline[0]['same_crop'] is True
    assert pipeline[1] == dict(type='GridMaskGenerator', input_size=32,
                               patch_size=8)
    assert cfg.model.head.loss.mode == 'both'
    with pytest.raises(KeyError, match='no RandomMaskGenerator'):
        tool.apply_options(cfg, {'pipeline:RandomMaskGenerator.x': 1})


GRIDS = sorted(glob.glob(osp.join(ROOT, 'configs/ablations/*.py')))


@pytest.mark.parametrize('path', GRIDS, ids=osp.basename)
def test_shipped_grids_resolve(path, tmp_path):
    tool = ablate()
    grid = tool.load_grid(path)
    assert grid['points'] and grid.get('paper')
    for point in grid['points']:
        cfg = tool.point_config(grid, point, str(tmp_path), 0)
        assert cfg.train_cfg.max_iters <= 800
        # every point's pipeline and model are buildable
        for t in cfg.train_dataloader.dataset.pipeline:
            if t['type'] in ('RandomMaskGenerator', 'BlockwiseMaskGenerator',
                             'GridMaskGenerator', 'SquareMaskGenerator',
                             'SIMTwoViews'):
                TRANSFORMS.build(t)
        needs_file = 'basis' in str(cfg.model) or 'palette' in str(cfg.model)
        if not needs_file:
            model_cfg = cfg.model.copy()
            model_cfg.setdefault('data_preprocessor', cfg.get(
                'data_preprocessor'))
            MODELS.build(model_cfg)
