"""Time full pre-training steps of mmmim methods, next to mmpretrain's own.

    python tools/analysis/benchmark.py                       # MAE + iTPN vs mmpretrain, CPU fp32, batch 8, 224 px
    python tools/analysis/benchmark.py --methods mae hpm simmim sim itpn --batch-size 8
    python tools/analysis/benchmark.py --device cuda --precision bf16 --batch-size 128
    python tools/analysis/benchmark.py --hpm-mask-batch 256  # HPM's hard-patch mask alone

A step is what the Runner does each iteration: data preprocessor, forward,
loss, backward, optimizer step (AdamW), plus the method's per-iteration hooks
(HPM's EMA teacher update, SIM's momentum). Masks drawn on the device by the
model (MAE/iTPN random masks, HPM's teacher mask) are inside the step; masks
and views drawn by the data pipeline (in the data workers) are prepared
beforehand, as the dataloader would. Each model runs in a fresh process and
is timed after ``--warmup`` steps over ``--iters`` steps; the median step
time is reported with images/s and peak memory (CUDA: max allocated; CPU:
the process's peak resident memory, model and interpreter included).
Where mmpretrain has the same model (MAE ViT, iTPN HiViT pixel at the same
decoder depth) it is timed in the same run and the ratio printed.
"""
import argparse
import contextlib
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import mmmim  # noqa: E402,F401
from mmengine.config import Config  # noqa: E402
from mmengine.dataset import default_collate, pseudo_collate  # noqa: E402
from mmengine.hub import get_config  # noqa: E402
from mmengine.logging import MessageHub, MMLogger  # noqa: E402
from mmmim.utils import build_model_from_config  # noqa: E402
from mmpretrain.registry import HOOKS, TRANSFORMS  # noqa: E402

# method -> (mmmim config, arch overrides per arch name)
METHOD_CONFIGS = dict(
    mae='configs/mae/mae-vit-base_pixel_1600e.py',
    simmim='configs/simmim/simmim-vit-base_pixel_800e.py',
    hpm='configs/hpm/hpm-vit-base_pixel_800e.py',
    sim='configs/sim/sim-vit-base_1600e.py',
    itpn='configs/itpn/itpn-base_pixel_800e.py',
)
# mmpretrain's own model of the same method, and how to make it comparable
MMPRETRAIN_COUNTERPARTS = dict(
    mae='mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-1600e_in1k.py',
    itpn='mmpretrain::itpn/itpn-pixel_hivit-base-p16_8xb512-amp-coslr-800e_in1k.py',
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--methods', nargs='+', default=['mae', 'itpn'],
                        choices=sorted(METHOD_CONFIGS))
    parser.add_argument('--no-mmpretrain', action='store_true',
                        help='skip the mmpretrain counterparts')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--precision', choices=['fp32', 'bf16'],
                        default='fp32')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch default)')
    parser.add_argument('--compile', action='store_true',
                        help="torch.compile the mmmim models' compute "
                        'modules (model.compile=True)')
    parser.add_argument('--cfg-options', nargs='*', default=[],
                        help='key=value overrides for every mmmim config, '
                        'e.g. model.backbone.arch=small')
    parser.add_argument('--hpm-mask-batch', type=int, default=0,
                        help='also time HPM hard-patch mask generation for a '
                        'batch of this size (224 px grid)')
    return parser.parse_args(argv)


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_isolated(fn, *args):
    """Run ``fn(*args)`` in a fresh process: no allocator or cache state
    carries over from the previous model, and peak memory is its own."""
    import multiprocessing as mp
    with mp.get_context('spawn').Pool(1) as pool:
        return pool.apply(fn, args)


class StepRunner:
    """The little of mmengine's Runner the per-iteration hooks read."""

    def __init__(self, model, max_iters=1000, max_epochs=100):
        self.model = model
        self.message_hub = MessageHub.get_instance('mmmim_benchmark')
        self.iter, self.epoch = 0, 0
        self.max_iters, self.max_epochs = max_iters, max_epochs
        for key in ('iter', 'epoch', 'max_iters', 'max_epochs'):
            self.message_hub.update_info(key, getattr(self, key))


def make_batch(cfg, batch_size, img_size, seed=0):
    """Run the config's pipeline (minus file loading) on random images."""
    rng = np.random.default_rng(seed)
    np.random.seed(seed)
    pipeline = [TRANSFORMS.build(t) for t in cfg.train_dataloader.dataset.pipeline
                if t['type'] not in ('LoadImageFromFile', 'LoadImageChecked')]
    samples = []
    for _ in range(batch_size):
        results = dict(img=rng.integers(0, 256, (img_size, img_size, 3),
                                        dtype=np.uint8),
                       img_shape=(img_size, img_size),
                       ori_shape=(img_size, img_size))
        for t in pipeline:
            results = t(results)
        samples.append(results)
    collate = cfg.train_dataloader.get('collate_fn', {}).get(
        'type', 'default_collate')
    return (default_collate if collate == 'default_collate' else
            pseudo_collate)(samples)


def build(cfg_path, cfg_options, img_size):
    cfg = Config.fromfile(str(cfg_path))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model = build_model_from_config(cfg)
    hooks = [HOOKS.build(h) for h in cfg.get('custom_hooks', [])]
    return cfg, model, hooks


def time_model(name, cfg, model, hooks, args):
    device = torch.device(args.device)
    model = model.to(device).train()
    batch = make_batch(cfg, args.batch_size, args.img_size)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95),
                                  weight_decay=0.05)
    runner = StepRunner(model)
    for hook in hooks:
        if hasattr(hook, 'before_train'):
            hook.before_train(runner)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16)
                if args.precision == 'bf16' else contextlib.nullcontext())

    def step():
        for hook in hooks:
            hook.before_train_iter(runner, runner.iter, batch)
        data = model.data_preprocessor(batch, True)
        with autocast:
            losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        for hook in hooks:
            hook.after_train_iter(runner, runner.iter, batch, None)
        runner.iter += 1
        return loss

    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(args.warmup + args.iters):
        if device.type == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss = step()
        if device.type == 'cuda':
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    if not torch.isfinite(loss.detach()).all():
        raise RuntimeError(f'{name}: non-finite loss {loss.item()}')
    peak = (torch.cuda.max_memory_allocated() / 2**20
            if device.type == 'cuda' else rss_mb())
    step_time = statistics.median(times)
    return dict(name=name, step_s=step_time,
                images_per_s=args.batch_size / step_time, peak_mb=peak,
                loss=float(loss.detach()))


def benchmark_one(impl, method, args, cfg_options):
    """Build and time one model (in its own process)."""
    import mmmim  # noqa: F401  (spawned processes register again)
    MMLogger.get_instance('mmengine').setLevel('WARNING')
    if args.threads:
        torch.set_num_threads(args.threads)
    if impl == 'mmmim':
        if args.compile:  # mmmim's opt-in compile of the compute modules
            cfg_options = dict(cfg_options, **{'model.compile': True})
        cfg, model, hooks = build(ROOT / METHOD_CONFIGS[method], cfg_options,
                                  args.img_size)
        return time_model(f'mmmim {method}', cfg, model, hooks, args)
    cfg = get_config(MMPRETRAIN_COUNTERPARTS[method])
    if method == 'itpn':
        # compare at the reference decoder depth (mmpretrain's default: 6)
        cfg.model.neck.decoder_depth = 8
    model = build_model_from_config(cfg)
    return time_model(f'mmpretrain {method}', cfg, model, [], args)


def time_hpm_mask(batch_size, repeats=50):
    from mmmim.models.target_generators.hpm_target import hard_patch_mask
    scores = torch.randn(batch_size, 196)
    times = []
    for _ in range(repeats + 5):
        start = time.perf_counter()
        mask = hard_patch_mask(scores, num_masked=147, num_hard=73)
        times.append(time.perf_counter() - start)
    assert int(mask.sum(1).min()) == 147
    return statistics.median(times[5:])


def main(argv=None):
    args = parse_args(argv)
    # parameter-init reports are noise here
    MMLogger.get_instance('mmengine').setLevel('WARNING')
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg_options = dict(kv.split('=', 1) for kv in args.cfg_options)
    cfg_options = {k: eval(v) if v[:1] in '[({0123456789' else v
                   for k, v in cfg_options.items()}
    print(f'device={args.device} precision={args.precision} '
          f'batch={args.batch_size} img={args.img_size} '
          f'threads={torch.get_num_threads()} torch={torch.__version__}')
    rows = []
    for method in args.methods:
        ours = run_isolated(benchmark_one, 'mmmim', method, args, cfg_options)
        rows.append(ours)
        if method in MMPRETRAIN_COUNTERPARTS and not args.no_mmpretrain:
            ref = run_isolated(benchmark_one, 'mmpretrain', method, args,
                               cfg_options)
            ref['ratio'] = ref['step_s'] / ours['step_s']
            rows.append(ref)
    print(f"\n{'model':<22}{'step (s)':>10}{'img/s':>10}{'peak MB':>10}"
          f"{'speed-up of mmmim':>20}")
    for row in rows:
        ratio = f"{row['ratio']:.2f}x" if 'ratio' in row else ''
        print(f"{row['name']:<22}{row['step_s']:>10.3f}"
              f"{row['images_per_s']:>10.2f}{row['peak_mb']:>10.0f}"
              f'{ratio:>20}')
    if 'hpm' in args.methods and 'mae' in args.methods:
        step = {r['name']: r['step_s'] for r in rows}
        print(f"\nHPM / MAE step time: "
              f"{step['mmmim hpm'] / step['mmmim mae']:.2f}x")
    if args.hpm_mask_batch:
        ms = time_hpm_mask(args.hpm_mask_batch) * 1e3
        print(f'\nHPM hard-patch mask, batch {args.hpm_mask_batch}, 196 '
              f'patches: {ms:.2f} ms')


if __name__ == '__main__':
    main()
