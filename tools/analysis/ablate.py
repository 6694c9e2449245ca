"""Run a named grid of config overrides at demo scale and tabulate it.

    python tools/analysis/ablate.py configs/ablations/mae_mask_ratio.py
    python tools/analysis/ablate.py GRID --jobs 2 --threads 1
    python tools/analysis/ablate.py GRID --only r0.75 r0.90
    python tools/analysis/ablate.py GRID --report-only      # table + plot
    python tools/analysis/ablate.py GRID --dry-run          # configs only

Each point of the grid is the grid's ``base`` config (a Fashion-MNIST demo)
with the grid's ``common`` options and the point's ``options`` applied. The
point is pre-trained (``tools/train.py``), its frozen encoder evaluated by
kNN / linear probe (``tools/analysis/evaluate_representation.py``) and,
if the grid asks, fine-tuned (``tools/transfer_demo.py classify``, full or
last-k blocks). Points run in parallel worker processes (``--jobs``, each
with ``--threads`` torch threads; default: as many as the cores allow).

Resumable: a point whose ``result.json`` exists is skipped; an interrupted
pre-training resumes from its last checkpoint (saved every quarter of the
run). The table (``<work-dir>/results.md``), the plot (``results.png``) and
all numbers (``results.json``) are rewritten whenever the grid ends.
A point that another grid has already measured with the identical config
and evaluation (every MAE grid's default point, say) is not run again: its
result is reused and the table says so (``--no-reuse`` runs it anyway).

Grid files (``configs/ablations/*.py``, plain mmengine config syntax)::

    base = 'configs/demo/mae_fashion-mnist.py'
    title = 'MAE: mask ratio'
    paper = 'MAE fig. 5: linear probing rises up to 75 %...'
    x_label = 'mask ratio'                 # plot axis (numeric x: a line)
    common = {'train_cfg.max_iters': 800}  # options of every point
    evaluation = dict(knn=True, linear=True, random_init=True,
                      finetune=dict(iters=200, batch_size=64),
                      partial=dict(trainable_blocks=1, iters=200))
    points = [
        dict(name='r0.75', x=0.75, options={
            'model.mask_ratio': 0.75,
            'pipeline:RandomMaskGenerator.mask_ratio': 0.75}),
    ]
    # optional: files some points need (a PCA basis, a palette), made once
    prepare = [dict(creates='work_dirs/ablations/_data/pca.npz',
                    command=['tools/analysis/fit_mim_targets.py', 'pca',
                             'configs/demo/mae_fashion-mnist.py', '--out',
                             'work_dirs/ablations/_data/pca.npz'])]

A point may name its own ``base`` config (e.g. MAE next to HPM).
Options are mmengine ``--cfg-options`` keys (dotted, list indices allowed,
dict values merged, ``_delete_=True`` replaces). ``pipeline:TYPE.key``
sets ``key`` of the first transform of that type in the training pipeline
(searching nested pipelines, e.g. ``SIMTwoViews``' colour pipelines);
``pipeline:TYPE`` with a dict value replaces that transform.
"""
import argparse
import copy
import glob
import hashlib
import importlib.util
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time
from typing import Dict, List, Optional

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, ROOT)

DEFAULT_EVALUATION = dict(knn=True, linear=True, random_init=True,
                          num_train=10000, num_test=2000, finetune=None,
                          partial=None)


def load_tool(name: str):
    """Import ``tools/<name>.py`` (tool scripts are not a package)."""
    path = osp.join(ROOT, 'tools', name + '.py')
    spec = importlib.util.spec_from_file_location(
        'mmmim_tool_' + name.replace('/', '_'), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------- the grid
def load_grid(path: str) -> dict:
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    grid = cfg.to_dict()
    for key in ('base', 'points'):
        if key not in grid:
            raise ValueError(f'{path}: a grid needs `{key}`')
    names = [p['name'] for p in grid['points']]
    if len(set(names)) != len(names):
        raise ValueError(f'{path}: point names must be unique, got {names}')
    for name in names:
        if not re.fullmatch(r'[A-Za-z0-9_.+-]+', name):
            raise ValueError(f'{path}: point name {name!r} must be a plain '
                             'file name')
    grid.setdefault('name', osp.splitext(osp.basename(path))[0])
    grid.setdefault('title', grid['name'])
    grid.setdefault('common', {})
    evaluation = dict(DEFAULT_EVALUATION)
    evaluation.update(grid.get('evaluation') or {})
    grid['evaluation'] = evaluation
    return grid


def _find_transform(pipeline: list, type_name: str) -> Optional[dict]:
    for t in pipeline:
        if not isinstance(t, dict):
            continue
        if t.get('type') == type_name:
            return t
        for value in t.values():
            if isinstance(value, list):
                found = _find_transform(value, type_name)
                if found is not None:
                    return found
    return None


def apply_options(cfg, options: Dict) -> None:
    """Apply a point's options to an mmengine ``Config`` in place."""
    plain = {}
    for key, value in options.items():
        if not key.startswith('pipeline:'):
            plain[key] = value
            continue
        spec = key[len('pipeline:'):]
        type_name, _, attr = spec.partition('.')
        pipeline = cfg.train_dataloader.dataset.pipeline
        transform = _find_transform(pipeline, type_name)
        if transform is None:
            raise KeyError(f'no {type_name} in the training pipeline '
                           f'({[t.get("type") for t in pipeline]})')
        if attr:
            transform[attr] = value
        else:  # replace the transform
            transform.clear()
            transform.update(copy.deepcopy(value))
    if plain:
        cfg.merge_from_dict(plain)


def point_config(grid: dict, point: dict, work_dir: str, num_workers: int):
    """The point's full config (base + common + options + run settings)."""
    from mmengine.config import Config
    base = point.get('base', grid['base'])
    cfg = Config.fromfile(base if osp.isabs(base) else osp.join(ROOT, base))
    apply_options(cfg, grid['common'])
    apply_options(cfg, point.get('options', {}))
    cfg.work_dir = work_dir
    loop = cfg.train_cfg
    if loop.get('type') != 'IterBasedTrainLoop':
        raise ValueError('ablation grids run iteration-based demo configs')
    max_iters = int(loop['max_iters'])
    # checkpoints every quarter run: an interrupted point resumes
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False,
        interval=max(1, max_iters // 4), max_keep_ckpts=1)
    cfg.default_hooks.logger = dict(
        type='LoggerHook', interval=max(1, min(50, max_iters // 10)))
    cfg.log_processor = dict(by_epoch=False)
    dl = cfg.train_dataloader
    dl.num_workers = num_workers
    dl.persistent_workers = num_workers > 0
    return cfg


# the parts of a config that decide a run's numbers (not where it writes,
# how it logs or whether it resumed; not the base file's helper variables)
RUN_KEYS = ('model', 'data_preprocessor', 'train_dataloader', 'train_cfg',
            'optim_wrapper', 'param_scheduler', 'randomness', 'custom_hooks',
            'default_hooks', 'env_cfg', 'load_from', 'custom_imports')


def fingerprint(cfg, evaluation: dict) -> str:
    """What decides a point's numbers: the config's ``RUN_KEYS`` and the
    grid's evaluation. Points of different grids with the same fingerprint
    are one experiment (e.g. every MAE grid's default point)."""
    cfg = {k: v for k, v in cfg.to_dict().items() if k in RUN_KEYS}
    text = json.dumps(dict(config=cfg, evaluation=evaluation),
                      sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def point_fingerprint(grid: dict, point: dict, num_workers: int,
                      point_dir: Optional[str] = None) -> str:
    """The fingerprint of the config a point ran with (``config.py`` in
    ``point_dir``, if there) or would run with."""
    from mmengine.config import Config
    path = osp.join(point_dir, 'config.py') if point_dir else None
    cfg = Config.fromfile(path) if path and osp.isfile(path) else \
        point_config(grid, point, '', num_workers)
    return fingerprint(cfg, grid['evaluation'])


def write_fingerprint(point_dir: str, key: str) -> None:
    with open(osp.join(point_dir, 'fingerprint'), 'w') as f:
        f.write(key + '\n')


def find_measured(out_dir: str, key: str) -> Optional[str]:
    """A finished point with this fingerprint in another grid's work dir
    (siblings of ``out_dir``), or None."""
    pattern = osp.join(osp.dirname(out_dir), '*', '*', 'fingerprint')
    for path in sorted(glob.glob(pattern)):
        point_dir = osp.dirname(path)
        if osp.dirname(point_dir) == out_dir or not osp.isfile(
                osp.join(point_dir, 'result.json')):
            continue
        with open(path) as f:
            if f.read().strip() == key:
                return point_dir
    return None


def reuse_result(point: dict, source_dir: str, point_dir: str) -> dict:
    """Record ``source_dir``'s result as this point's (same experiment),
    naming the point that was measured (also when the source reused it)."""
    with open(osp.join(source_dir, 'result.json')) as f:
        result = json.load(f)
    measured = result.get('shared_with') or osp.join(
        osp.basename(osp.dirname(source_dir)), osp.basename(source_dir))
    result.update(name=point['name'], x=point.get('x'),
                  label=point.get('label', point['name']),
                  options=point.get('options', {}), shared_with=measured)
    os.makedirs(point_dir, exist_ok=True)
    with open(osp.join(point_dir, 'result.json'), 'w') as f:
        json.dump(result, f, indent=2)
    return result


def checkpoint_of(work_dir: str) -> Optional[str]:
    """The checkpoint ``last_checkpoint`` names (relative to the work dir, or
    an older absolute path), if it exists."""
    from mmmim.engine.resume import read_last_checkpoint
    ckpt, _ = read_last_checkpoint(osp.abspath(work_dir))
    return ckpt if ckpt is not None and osp.isfile(ckpt) else None


# ------------------------------------------------------------ one point
def run_point(grid: dict, point: dict, out_dir: str,
              num_workers: int) -> dict:
    """Pre-train, evaluate and record one point (in this process)."""
    import mmmim  # noqa: F401
    name = point['name']
    point_dir = osp.join(out_dir, name)
    os.makedirs(point_dir, exist_ok=True)
    cfg = point_config(grid, point, point_dir, num_workers)
    config_path = osp.join(point_dir, 'config.py')
    cfg.dump(config_path)
    write_fingerprint(point_dir, fingerprint(cfg, grid['evaluation']))
    max_iters = int(cfg.train_cfg['max_iters'])
    result = dict(name=name, x=point.get('x'), label=point.get('label', name),
                  options=point.get('options', {}), max_iters=max_iters)

    t0 = time.time()
    ckpt = checkpoint_of(point_dir)
    done = ckpt is not None and ckpt.endswith(f'iter_{max_iters}.pth')
    if not done:
        _stage(point_dir, 'train')
        argv = [config_path, '--work-dir', point_dir]
        if ckpt is not None:
            argv.append('--resume')
        load_tool('train').main(argv)
        ckpt = checkpoint_of(point_dir)
    result['train_minutes'] = round((time.time() - t0) / 60, 2)
    result['checkpoint'] = ckpt
    log = _last_losses(point_dir)
    if log:
        result['final_log'] = log

    ev = grid['evaluation']
    if ev['knn'] or ev['linear']:
        _stage(point_dir, 'evaluate')
        t1 = time.time()
        argv = [config_path, '--checkpoint', ckpt,
                '--num-train', str(ev['num_train']),
                '--num-test', str(ev['num_test']),
                '--out-json', osp.join(point_dir, 'representation.json')]
        if ev['random_init']:
            argv.append('--compare-random-init')
        if not ev['linear']:
            argv.append('--no-linear')
        rep = load_tool('analysis/evaluate_representation').main(argv)
        result['knn'] = rep['checkpoint']['knn_top1']
        result['linear'] = rep['checkpoint'].get('linear_top1')
        if 'random_init' in rep:
            result['random_knn'] = rep['random_init']['knn_top1']
            result['random_linear'] = rep['random_init'].get('linear_top1')
        result['eval_minutes'] = round((time.time() - t1) / 60, 2)

    for key, blocks_default in (('finetune', None), ('partial', 1)):
        spec = ev.get(key)
        if not spec:
            continue
        _stage(point_dir, key)
        spec = dict(spec)
        t1 = time.time()
        argv = ['classify', '--checkpoint', ckpt, '--modes', 'finetune',
                '--work-dir', osp.join(point_dir, key),
                '--iters', str(spec.get('iters', 200)),
                '--batch-size', str(spec.get('batch_size', 64)),
                '--train-samples', str(spec.get('train_samples', 10000)),
                '--test-samples', str(spec.get('test_samples', 2000))]
        blocks = spec.get('trainable_blocks', blocks_default)
        if blocks is not None:
            argv += ['--trainable-blocks', str(blocks)]
        if spec.get('layer_decay') is not None:
            argv += ['--layer-decay', str(spec['layer_decay'])]
        load_tool('transfer_demo').main(argv)
        with open(osp.join(point_dir, key, 'results.json')) as f:
            record = json.load(f)['classify_finetune']
        result[key] = record['finetune']['top1']
        result[key + '_minutes'] = round((time.time() - t1) / 60, 2)

    result['minutes'] = round((time.time() - t0) / 60, 2)
    with open(osp.join(point_dir, 'result.json'), 'w') as f:
        json.dump(result, f, indent=2)
    _stage(point_dir, 'done')
    return result


def _stage(point_dir: str, stage: str) -> None:
    with open(osp.join(point_dir, 'stage'), 'w') as f:
        f.write(stage)


_ITER_RE = re.compile(r'Iter\(train\) \[\s*(\d+)/(\d+)\]')


def _last_log_line(point_dir: str) -> Optional[str]:
    path = osp.join(point_dir, 'worker.log')
    if not osp.isfile(path):
        return None
    with open(path, 'rb') as f:
        f.seek(max(0, os.path.getsize(path) - 20000))
        text = f.read().decode(errors='replace')
    lines = [ln for ln in text.splitlines() if _ITER_RE.search(ln)]
    return lines[-1] if lines else None


def _last_losses(point_dir: str) -> Optional[str]:
    line = _last_log_line(point_dir)
    if not line:
        return None
    terms = re.findall(r'(loss\w*): ([0-9.]+)', line)
    return ' '.join(f'{k} {v}' for k, v in terms) or None


def progress(point_dir: str) -> str:
    """'train 350/800' etc. for the progress display."""
    stage_path = osp.join(point_dir, 'stage')
    stage = open(stage_path).read().strip() if osp.isfile(stage_path) \
        else 'start'
    if stage == 'train':
        line = _last_log_line(point_dir)
        match = _ITER_RE.search(line) if line else None
        if match:
            return f'train {match.group(1)}/{match.group(2)}'
    return stage


# ------------------------------------------------------------- reporting
def _fmt(value, digits=2):
    return '-' if value is None else f'{value:.{digits}f}'


def collect(grid: dict, out_dir: str) -> List[dict]:
    results = []
    for point in grid['points']:
        path = osp.join(out_dir, point['name'], 'result.json')
        if osp.isfile(path):
            with open(path) as f:
                results.append(json.load(f))
    return results


def write_report(grid: dict, out_dir: str, results: List[dict],
                 command: str) -> str:
    """``results.md`` / ``results.json`` / ``results.png``; returns the
    markdown."""
    ev = grid['evaluation']
    cols = [('point', None), ('knn', 'kNN'), ('random_knn', 'kNN random'),
            ('linear', 'linear'), ('finetune', 'fine-tune'),
            ('partial', 'partial FT'), ('minutes', 'minutes')]
    cols = [(k, t) for k, t in cols
            if k == 'point' or any(r.get(k) is not None for r in results)]
    lines = [f'### {grid["title"]}', '']
    if grid.get('paper'):
        lines += [f'Paper: {grid["paper"]}', '']
    header = ['point'] + [t for k, t in cols[1:]]
    if any('knn' in r and 'random_knn' in r for r in results):
        header.insert(header.index('kNN random') + 1, 'kNN gain')
    lines.append('| ' + ' | '.join(header) + ' |')
    lines.append('|' + ' --- |' * len(header))
    for r in results:
        row = [r.get('label', r['name'])]
        for key, _ in cols[1:]:
            row.append(_fmt(r.get(key)))
            if key == 'random_knn' and 'kNN gain' in header:
                gain = (r['knn'] - r['random_knn']) if r.get(
                    'random_knn') is not None else None
                row.append('-' if gain is None else f'{gain:+.2f}')
        lines.append('| ' + ' | '.join(row) + ' |')
    missing = [p['name'] for p in grid['points']
               if p['name'] not in {r['name'] for r in results}]
    lines.append('')
    budget = sorted({r['max_iters'] for r in results})
    lines.append(f'{len(results)} of {len(grid["points"])} points measured'
                 + (f'; not run yet: {", ".join(missing)}' if missing else '')
                 + (f'. Pre-training: {"/".join(map(str, budget))} '
                    'iterations' if budget else '')
                 + f'; kNN / linear probe on {ev["num_train"]} training / '
                 f'{ev["num_test"]} test images.')
    shared = [f'{r.get("label", r["name"])} = {r["shared_with"]}'
              for r in results if r.get('shared_with')]
    if shared:
        lines.append('Measured once for several grids (identical config and '
                     'evaluation): ' + '; '.join(shared) + '.')
    lines += ['', f'Command: `{command}`', '']
    text = '\n'.join(lines)
    with open(osp.join(out_dir, 'results.md'), 'w') as f:
        f.write(text)
    with open(osp.join(out_dir, 'results.json'), 'w') as f:
        json.dump(dict(grid=grid['name'], title=grid['title'],
                       results=results), f, indent=2)
    if results:
        plot(grid, results, osp.join(out_dir, 'results.png'))
    return text


def plot(grid: dict, results: List[dict], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    metrics = [(k, t) for k, t in (('knn', 'kNN'), ('linear', 'linear probe'),
                                   ('finetune', 'fine-tune'),
                                   ('partial', 'partial fine-tune'))
               if any(r.get(k) is not None for r in results)]
    xs = [r.get('x') for r in results]
    numeric = all(isinstance(x, (int, float)) for x in xs)
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(results) + 2), 3.6))
    if numeric:
        for key, label in metrics:
            pts = sorted((r['x'], r[key]) for r in results
                         if r.get(key) is not None)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], 'o-',
                    label=label)
        ax.set_xlabel(grid.get('x_label', 'x'))
    else:
        width = 0.8 / max(1, len(metrics))
        for i, (key, label) in enumerate(metrics):
            ax.bar([j + i * width for j in range(len(results))],
                   [r.get(key) or 0 for r in results], width, label=label)
        ax.set_xticks([j + width * (len(metrics) - 1) / 2
                       for j in range(len(results))])
        ax.set_xticklabels([r.get('label', r['name']) for r in results],
                           rotation=20, ha='right', fontsize=8)
        values = [r[k] for r in results for k, _ in metrics
                  if r.get(k) is not None]
        if values:
            ax.set_ylim(max(0, min(values) - 5), min(100, max(values) + 3))
    random = [r['random_knn'] for r in results if r.get('random_knn')]
    if random:
        ax.axhline(sum(random) / len(random), color='grey', ls='--', lw=1,
                   label='kNN at random init')
    ax.set_ylabel('top-1 (%)')
    ax.set_title(grid['title'], fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------- scheduler
def default_jobs(threads: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') \
        else (os.cpu_count() or 1)
    return max(1, cores // max(1, threads))


def prepare(grid: dict, env: dict) -> None:
    """Run the grid's ``prepare`` commands whose output is missing."""
    for step in grid.get('prepare') or []:
        creates = osp.join(ROOT, step['creates'])
        if osp.isfile(creates):
            continue
        cmd = [sys.executable] + list(step['command'])
        print('prepare: ' + ' '.join(step['command']), flush=True)
        subprocess.run(cmd, check=True, env=env, cwd=ROOT)
        if not osp.isfile(creates):
            raise RuntimeError(f'{step["command"]} did not create {creates}')


def share_measured(args, grid: dict, out_dir: str,
                   reuse: bool = True) -> None:
    """Fingerprint the finished points (older runs have none) and, with
    ``reuse``, take the result of an identical point another grid has
    measured."""
    for point in grid['points']:
        point_dir = osp.join(out_dir, point['name'])
        finished = osp.isfile(osp.join(point_dir, 'result.json'))
        if finished and osp.isfile(osp.join(point_dir, 'fingerprint')):
            continue
        if not finished and (not reuse or args.no_reuse or (
                args.only and point['name'] not in args.only)):
            continue
        key = point_fingerprint(grid, point, args.num_workers,
                                point_dir if finished else None)
        if not finished:
            source = find_measured(out_dir, key)
            if source is None:
                continue
            result = reuse_result(point, source, point_dir)
            print(f'  {point["name"]}: the same experiment as '
                  f'{result["shared_with"]} (identical config and '
                  'evaluation), its result is reused', flush=True)
        write_fingerprint(point_dir, key)


def run_grid(args, grid: dict, out_dir: str) -> List[dict]:
    share_measured(args, grid, out_dir)
    todo = [p for p in grid['points']
            if (not args.only or p['name'] in args.only)
            and not osp.isfile(osp.join(out_dir, p['name'], 'result.json'))]
    skipped = len([p for p in grid['points']
                   if not args.only or p['name'] in args.only]) - len(todo)
    print(f'grid {grid["name"]}: {len(todo)} to run, {skipped} already done '
          f'-> {out_dir} ({args.jobs} jobs x {args.threads} threads)',
          flush=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads),
               PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    if todo:
        prepare(grid, env)
    running: Dict[str, subprocess.Popen] = {}
    failed = []
    start = time.time()
    last_print = 0.
    queue = list(todo)
    while queue or running:
        while queue and len(running) < args.jobs:
            point = queue.pop(0)
            point_dir = osp.join(out_dir, point['name'])
            os.makedirs(point_dir, exist_ok=True)
            cmd = [sys.executable, osp.abspath(__file__), args.grid,
                   '--work-dir', out_dir, '--worker', point['name'],
                   '--num-workers', str(args.num_workers)]
            log = open(osp.join(point_dir, 'worker.log'), 'a')
            running[point['name']] = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
            log.close()
        time.sleep(args.poll)
        for name, proc in list(running.items()):
            if proc.poll() is not None:
                del running[name]
                if proc.returncode != 0:
                    failed.append(name)
                    print(f'  {name}: FAILED (exit {proc.returncode}); see '
                          f'{osp.join(out_dir, name, "worker.log")}',
                          flush=True)
                else:
                    with open(osp.join(out_dir, name, 'result.json')) as f:
                        r = json.load(f)
                    print(f'  {name}: done in {r["minutes"]:.1f} min, kNN '
                          f'{_fmt(r.get("knn"))}, linear '
                          f'{_fmt(r.get("linear"))}', flush=True)
        if time.time() - last_print >= args.progress_interval or \
                (not queue and not running):
            finished = len(todo) - len(queue) - len(running)
            states = ', '.join(f'{n}: {progress(osp.join(out_dir, n))}'
                               for n in running)
            print(f'[{(time.time() - start) / 60:5.1f} min] '
                  f'{finished}/{len(todo)} finished'
                  + (f' | running {states}' if states else ''), flush=True)
            last_print = time.time()
    if failed:
        print(f'failed points: {", ".join(failed)}', flush=True)
    return failed


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Run an ablation grid at demo scale (see the module '
        'docstring for the grid format)')
    parser.add_argument('grid', help='grid file, e.g. configs/ablations/'
                        'mae_mask_ratio.py')
    parser.add_argument('--work-dir', help='default: work_dirs/ablations/'
                        '<grid name>')
    parser.add_argument('--jobs', type=int, default=None,
                        help='points run in parallel (default: cores / '
                        'threads)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads per point (OMP_NUM_THREADS)')
    parser.add_argument('--num-workers', type=int, default=1,
                        help='dataloader workers per point')
    parser.add_argument('--only', nargs='+', help='run only these points')
    parser.add_argument('--no-reuse', action='store_true',
                        help='run every point, even one another grid has '
                        'measured with the identical config and evaluation')
    parser.add_argument('--dry-run', action='store_true',
                        help='write every point config and exit')
    parser.add_argument('--report-only', action='store_true',
                        help='only rewrite the table and plot')
    parser.add_argument('--poll', type=float, default=2.0,
                        help=argparse.SUPPRESS)
    parser.add_argument('--progress-interval', type=float, default=30.0,
                        help='seconds between progress lines')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.jobs is None:
        args.jobs = default_jobs(args.threads)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    grid = load_grid(args.grid)
    out_dir = osp.abspath(args.work_dir or osp.join(
        ROOT, 'work_dirs', 'ablations', grid['name']))
    os.makedirs(out_dir, exist_ok=True)
    if args.worker:
        point = [p for p in grid['points'] if p['name'] == args.worker]
        if not point:
            raise SystemExit(f'no point {args.worker!r} in {args.grid}')
        run_point(grid, point[0], out_dir, args.num_workers)
        return 0
    if args.only:
        unknown = set(args.only) - {p['name'] for p in grid['points']}
        if unknown:
            raise SystemExit(f'unknown points: {sorted(unknown)}')
    if args.dry_run:
        import mmmim  # noqa: F401
        for point in grid['points']:
            point_dir = osp.join(out_dir, point['name'])
            os.makedirs(point_dir, exist_ok=True)
            cfg = point_config(grid, point, point_dir, args.num_workers)
            cfg.dump(osp.join(point_dir, 'config.py'))
            print(osp.join(point_dir, 'config.py'))
        return 0
    if args.report_only:
        share_measured(args, grid, out_dir, reuse=False)
        failed = []
    else:
        failed = run_grid(args, grid, out_dir)
    command = 'python tools/analysis/ablate.py ' + osp.relpath(
        osp.abspath(args.grid), ROOT)
    text = write_report(grid, out_dir, collect(grid, out_dir), command)
    print(text)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
