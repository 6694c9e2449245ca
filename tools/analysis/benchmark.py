"""Time full pre-training steps of mmmim methods, next to mmpretrain's own,
and the data pipeline that feeds them.

    python tools/analysis/benchmark.py                       # MAE + iTPN vs mmpretrain, CPU fp32, batch 8, 224 px
    python tools/analysis/benchmark.py --methods mae hpm simmim sim itpn --batch-size 8
    python tools/analysis/benchmark.py --device cuda --precision bf16 --batch-size 256 \\
        --methods mae hpm simmim sim itpn --compile both --pipeline 256
    python tools/analysis/benchmark.py --hpm-mask-batch 256  # HPM's hard-patch mask alone

A step is what the Runner does each iteration: data preprocessor, forward,
loss, backward, optimizer step (AdamW), plus the method's per-iteration hooks
(HPM's EMA teacher update, SIM's momentum). Masks drawn on the device by the
model (HPM's teacher mask) are inside the step; masks and views drawn by the
data pipeline (in the data workers) are prepared beforehand, as the
dataloader would, and on a GPU the batch is on the device before the step
(a pinned-memory loader overlaps that copy with the previous step). Each
model runs in a fresh process and is timed after ``--warmup`` steps over
``--iters`` steps; the median step time is reported with images/s, peak
memory (CUDA: max allocated; CPU: the process's peak resident memory, model
and interpreter included) and the model FLOPs utilisation: the step's
floating-point operations (counted by ``torch.utils.flop_counter`` on one
eager step: matmuls, convolutions, attention; forward, backward and the
teachers' forward) per second, over the matrix-multiply rate of the same
device and precision measured at the start of the run.
Where mmpretrain has the same model (MAE ViT, iTPN HiViT pixel at the same
decoder depth) it is timed in the same run and the ratio printed.
``--compile on`` (or ``both``) compiles the compute modules of every model
(mmmim's ``model.compile``; the same modules of mmpretrain's models).
``--profile mae ...`` also profiles one eager step of those methods (and of
mmpretrain's counterparts) with ``torch.profiler``: the share of the ops'
self time per group (matmul / conv, attention, optimizer, other), the top
ops, and on CUDA how busy the GPU was over the step: what explains an MFU
gap.

``--pipeline N`` also times the ImageNet pre-training pipeline (the MAE
config's: decode, RandomResizedCrop, flip, mask, pack, collate) on N
ImageNet-like JPEGs it writes (500 x 375, quality 90, from scikit-image's
photos), in one process on one CPU core, with the config's cv2 decoding,
with ``DecodeRandomResizedCrop`` (reduced-size JPEG decoding) and the
workers' part of decoding on the device (``DeviceDecodeRandomResizedCrop``);
times the device's part of it (``DeviceDecodeDataPreprocessor``) on
``--device`` at ``--batch-size``; and says how many of this machine's cores
each measured step needs, and what decoding on the device adds to it.
"""
import argparse
import contextlib
import json
import os
import resource
import statistics
import sys
import tempfile
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
from mmpretrain.registry import HOOKS, MODELS, TRANSFORMS  # noqa: E402

from benchmark_report import (PIPELINES, feeding,  # noqa: E402  (beside)
                              profile_line)

# method -> mmmim config
METHOD_CONFIGS = dict(
    mae='configs/mae/mae-vit-base_pixel_1600e.py',
    simmim='configs/simmim/simmim-vit-base_pixel_800e.py',
    hpm='configs/hpm/hpm-vit-base_pixel_800e.py',
    sim='configs/sim/sim-vit-base_1600e.py',
    itpn='configs/itpn/itpn-base_pixel_800e.py',
)
# mmpretrain's own model of the same method
MMPRETRAIN_COUNTERPARTS = dict(
    mae='mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-1600e_in1k.py',
    itpn='mmpretrain::itpn/itpn-pixel_hivit-base-p16_8xb512-amp-coslr-800e_in1k.py',
)
# the ImageNet pipeline whose throughput is measured
PIPELINE_CONFIG = METHOD_CONFIGS['mae']
# the same with the JPEGs decoded on the model's device
DEVICE_DECODE_CONFIG = 'configs/mae/mae-vit-base_pixel_1600e_device-decode.py'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--methods', nargs='*', default=['mae', 'itpn'],
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
    parser.add_argument('--compile', choices=['off', 'on', 'both'],
                        default='off',
                        help='torch.compile the compute modules of every '
                        'model: off, on, or both (each model twice)')
    parser.add_argument('--matmul-size', type=int, default=None,
                        help='n of the n x n x n product that measures the '
                        'matmul rate (default: 8192 on CUDA, 4096 on CPU)')
    parser.add_argument('--cfg-options', nargs='*', default=[],
                        help='key=value overrides for every mmmim config, '
                        'e.g. model.backbone.arch=small')
    parser.add_argument('--hpm-mask-batch', type=int, default=0,
                        help='also time HPM hard-patch mask generation for a '
                        'batch of this size (224 px grid)')
    parser.add_argument('--pipeline', type=int, default=0, metavar='N',
                        help='also time the ImageNet pipeline on N generated '
                        'JPEGs, one CPU core')
    parser.add_argument('--pipeline-size', type=int, nargs=2,
                        default=(500, 375), metavar=('W', 'H'),
                        help='size of the generated JPEGs')
    parser.add_argument('--profile', nargs='*', default=[], metavar='METHOD',
                        choices=sorted(METHOD_CONFIGS),
                        help='also profile one eager step of these methods '
                        '(and of mmpretrain\'s counterparts): where the time '
                        'goes')
    parser.add_argument('--json', default=None,
                        help='write all results to this JSON file')
    return parser.parse_args(argv)


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_isolated(fn, *args):
    """Run ``fn(*args)`` in a fresh process: no allocator or cache state
    carries over from the previous model, and peak memory is its own."""
    import multiprocessing as mp
    with mp.get_context('spawn').Pool(1) as pool:
        return pool.apply(fn, args)


# ------------------------------------------------------------------ matmul
def matmul_rate(device: str, dtype: torch.dtype, n: int,
                repeats: int = 10) -> float:
    """FLOP/s of an n x n x n product (median of ``repeats`` after 3
    warm-ups, random operands)."""
    device = torch.device(device)
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    for _ in range(3):
        torch.mm(a, b)
    times = []
    for _ in range(repeats):
        if device.type == 'cuda':
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            torch.mm(a, b)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            start = time.perf_counter()
            torch.mm(a, b)
            times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times)


# ----------------------------------------------------------------- profile
# op name -> group; self time of everything else counts as 'other'
PROFILE_GROUPS = (
    ('matmul / conv', ('aten::mm', 'aten::addmm', 'aten::bmm', 'aten::baddbmm',
                       'aten::_addmm_activation', 'convolution')),
    ('attention', ('scaled_dot_product', 'flash_attention',
                   'efficient_attention', 'cudnn_attention')),
    ('optimizer', ('_foreach_', 'adamw', 'adam_')),
)


def profile_group(op_name: str) -> str:
    for group, patterns in PROFILE_GROUPS:
        if any(p in op_name.lower() for p in patterns):
            return group
    return 'other'


def profile_step(step, device, step_s, top=8) -> dict:
    """Where one (eager) step spends its time: ``torch.profiler`` over one
    step, each op's self time (CUDA: the device time of the kernels it
    launched; CPU: its self CPU time), summed per group and the ``top`` ops.
    On CUDA ``busy_share`` is the kernels' time over the timed (unprofiled)
    step: well under 1 means the GPU waits for the host."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile
    cuda = device.type == 'cuda'
    activities = [ProfilerActivity.CPU] + (
        [ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        step()
        if cuda:
            torch.cuda.synchronize()
    attr = 'self_device_time_total' if cuda else 'self_cpu_time_total'
    ops = [(e.key, getattr(e, attr) / 1e6) for e in prof.key_averages()
           if e.device_type == DeviceType.CPU and getattr(e, attr) > 0]
    total = sum(t for _, t in ops)
    groups = {g: 0.0 for g, _ in PROFILE_GROUPS + (('other', ()),)}
    for name, t in ops:
        groups[profile_group(name)] += t / total
    ops.sort(key=lambda op: -op[1])
    result = dict(time_s=total, groups=groups,
                  top=[dict(op=name, share=t / total)
                       for name, t in ops[:top]])
    if cuda:
        result['busy_share'] = total / step_s
    return result


# ------------------------------------------------------------------- steps
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


def build(cfg_path, cfg_options):
    cfg = Config.fromfile(str(cfg_path))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model = build_model_from_config(cfg)
    hooks = [HOOKS.build(h) for h in cfg.get('custom_hooks', [])
             if h['type'] != 'RepresentationEvalHook']
    return cfg, model, hooks


def compile_modules(model) -> None:
    """``torch.compile`` the compute modules in place: mmmim's own choice
    (``model.compile=True``: ``compile_compute_modules``), or the same parts
    of an mmpretrain model (backbone, neck, head)."""
    if hasattr(model, 'compile_compute_modules'):
        model.compile_compute_modules()
        return
    for name in ('backbone', 'neck', 'head'):
        module = getattr(model, name, None)
        if isinstance(module, torch.nn.Module):
            module.compile()


def time_model(name, cfg, model, hooks, args, compiled, profile=False):
    device = torch.device(args.device)
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
    model = model.to(device).train()
    batch = make_batch(cfg, args.batch_size, args.img_size)
    if device.type == 'cuda':  # what a pinned-memory loader delivers
        batch = model.data_preprocessor.cast_data(batch)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95),
                                  weight_decay=0.05)
    runner = StepRunner(model)
    for hook in hooks:
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

    # the model's FLOPs: one eager step, counted
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    flops = counter.get_total_flops()
    if compiled:
        compile_modules(model)

    if device.type == 'cuda':
        torch.cuda.synchronize()
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
    row = dict(name=name, compiled=compiled, step_s=step_time,
               images_per_s=args.batch_size / step_time, peak_mb=peak,
               gflop_per_image=flops / args.batch_size / 1e9,
               flop_per_s=flops / step_time, loss=float(loss.detach()))
    if profile:
        try:  # a profiler that fails must not cost the timings above
            row['profile'] = profile_step(step, device, step_time)
        except Exception as err:  # noqa: BLE001
            row['profile_error'] = f'{type(err).__name__}: {err}'
    return row


def benchmark_one(impl, method, args, cfg_options, compiled):
    """Build and time one model (in its own process)."""
    import mmmim  # noqa: F401  (spawned processes register again)
    MMLogger.get_instance('mmengine').setLevel('WARNING')
    if args.threads:
        torch.set_num_threads(args.threads)
    label = ' (compiled)' if compiled else ''
    profile = method in args.profile and not compiled
    if impl == 'mmmim':
        if compiled:
            cfg_options = dict(cfg_options, **{'model.compile': True})
        cfg, model, hooks = build(ROOT / METHOD_CONFIGS[method], cfg_options)
        return time_model(f'mmmim {method}{label}', cfg, model, hooks, args,
                          compiled, profile)
    cfg = get_config(MMPRETRAIN_COUNTERPARTS[method])
    if method == 'itpn':
        # compare at the reference decoder depth (mmpretrain's default: 6)
        cfg.model.neck.decoder_depth = 8
    model = build_model_from_config(cfg)
    return time_model(f'mmpretrain {method}{label}', cfg, model, [], args,
                      compiled, profile)


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


# ---------------------------------------------------------------- pipeline
def photo_sources():
    """RGB photos for ImageNet-like test images: scikit-image's bundled
    pictures, else smooth random fields (when scikit-image is missing)."""
    try:
        from skimage import data
        names = ('astronaut', 'coffee', 'chelsea', 'rocket',
                 'immunohistochemistry', 'hubble_deep_field')
        return [getattr(data, n)()[..., :3] for n in names]
    except Exception:  # no scikit-image: low-frequency noise
        import cv2
        rng = np.random.default_rng(0)
        return [cv2.resize(rng.integers(0, 256, (12, 16, 3), np.uint8),
                           (640, 480), interpolation=cv2.INTER_CUBIC)
                for _ in range(4)]


def write_imagenet_like_jpegs(folder, num, size=(500, 375), quality=90,
                              seed=0):
    """``num`` JPEGs of ``size`` (w, h) at ``quality``: random crops (60 to
    100% of the side), flips and resizes of real photos."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    sources = photo_sources()
    paths = []
    for i in range(num):
        src = sources[i % len(sources)]
        h, w = src.shape[:2]
        frac = rng.uniform(0.6, 1.0)
        ch, cw = int(h * frac), int(w * frac)
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = src[y:y + ch, x:x + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        img = Image.fromarray(np.ascontiguousarray(crop)).resize(
            size, Image.BICUBIC)
        path = os.path.join(folder, f'{i:05d}.JPEG')
        img.save(path, quality=quality)
        paths.append(path)
    return paths


def time_pipeline(num_images: int, batch_size: int = 64,
                  size=(500, 375), device: str = 'cpu',
                  device_batch: int = 256) -> dict:
    """Images per CPU-second of the ImageNet pre-training pipeline +
    collate in this process, one thread: the config's (cv2 decode), with
    reduced-size JPEG decoding, and the workers' part of decoding on the
    device; and images/s of the device's part (:func:`time_device_decode`,
    batches of ``device_batch``) on ``device``."""
    import cv2
    from mmcv.transforms import Compose
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    cfg = Config.fromfile(str(ROOT / PIPELINE_CONFIG))
    config_pipeline = list(cfg.train_dataloader.dataset.pipeline)
    load, crop = config_pipeline[:2]
    assert load['type'] == 'LoadImageChecked', load
    assert crop['type'] == 'RandomResizedCrop', crop
    reduced = [dict(crop, type='DecodeRandomResizedCrop')
               ] + config_pipeline[2:]
    device_cfg = Config.fromfile(str(ROOT / DEVICE_DECODE_CONFIG))
    device_decode = list(device_cfg.train_dataloader.dataset.pipeline)
    out = dict(images=num_images, batch_size=batch_size,
               size=f'{size[0]}x{size[1]}', quality=90)
    with tempfile.TemporaryDirectory() as folder:
        paths = write_imagenet_like_jpegs(folder, num_images, size)
        out['mean_kb'] = float(np.mean([os.path.getsize(p)
                                        for p in paths])) / 1024
        for name, steps, collate in (
                ('config (cv2 decode)', config_pipeline, default_collate),
                ('reduced-size decode', reduced, default_collate),
                ('device decode (host part)', device_decode, pseudo_collate)):
            pipeline = Compose([TRANSFORMS.build(t) for t in steps])
            # (the last, the device decode's, also makes the batch timed below)
            np.random.seed(0)
            for p in paths[:8]:  # warm-up
                pipeline(dict(img_path=p))
            # CPU time of this single-threaded process: images per core
            # second, also on a machine shared with other work
            start = time.process_time()
            for i in range(0, len(paths), batch_size):
                collate([pipeline(dict(img_path=p))
                         for p in paths[i:i + batch_size]])
            out[name] = len(paths) / (time.process_time() - start)
        batch = pseudo_collate([pipeline(dict(img_path=paths[i % len(paths)]))
                                for i in range(device_batch)])
        out['device_decode'] = dict(
            device=device, batch_size=device_batch,
            images_per_s=time_device_decode(
                batch, MODELS.build(device_cfg.data_preprocessor), device))
    return out


def time_device_decode(batch: dict, preprocessor, device: str,
                       iters: int = 5) -> float:
    """Images/s of ``DeviceDecodeDataPreprocessor`` (decode, crop, resize,
    flip, normalise) on ``device`` for a collated batch: the median of
    ``iters`` after two warm-ups."""
    preprocessor = preprocessor.to(device)

    def sync():
        if torch.device(device).type == 'cuda':
            torch.cuda.synchronize(device)

    for _ in range(2):
        preprocessor(batch, True)
    times = []
    for _ in range(iters):
        sync()
        start = time.perf_counter()
        preprocessor(batch, True)
        sync()
        times.append(time.perf_counter() - start)
    return len(batch['inputs']) / statistics.median(times)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# -------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    # parameter-init reports are noise here
    MMLogger.get_instance('mmengine').setLevel('WARNING')
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg_options = dict(kv.split('=', 1) for kv in args.cfg_options)
    cfg_options = {k: eval(v) if v[:1] in '[({0123456789' else v
                   for k, v in cfg_options.items()}
    device = torch.device(args.device)
    device_name = (torch.cuda.get_device_name(device)
                   if device.type == 'cuda' else 'CPU')
    print(f'device={args.device} ({device_name}) precision={args.precision}'
          f' batch={args.batch_size} img={args.img_size} '
          f'threads={torch.get_num_threads()} torch={torch.__version__}')
    dtype = torch.bfloat16 if args.precision == 'bf16' else torch.float32
    n = args.matmul_size or (8192 if device.type == 'cuda' else 4096)
    rate = matmul_rate(args.device, dtype, n)
    print(f'matmul rate ({args.precision}, {n}^3, median of 10): '
          f'{rate / 1e12:.2f} TFLOP/s')
    result = dict(device=args.device, device_name=device_name,
                  precision=args.precision, batch_size=args.batch_size,
                  img_size=args.img_size, torch=torch.__version__,
                  matmul_flop_per_s=rate, matmul_size=n, rows=[])

    modes = dict(off=[False], on=[True], both=[False, True])[args.compile]
    rows = result['rows']
    for compiled in modes:
        for method in args.methods:
            ours = run_isolated(benchmark_one, 'mmmim', method, args,
                                cfg_options, compiled)
            rows.append(ours)
            if method in MMPRETRAIN_COUNTERPARTS and not args.no_mmpretrain:
                ref = run_isolated(benchmark_one, 'mmpretrain', method, args,
                                   {}, compiled)
                ref['ratio'] = ref['step_s'] / ours['step_s']
                rows.append(ref)
    for row in rows:
        row['mfu'] = row['flop_per_s'] / rate
    if rows:
        print(f"\n{'model':<30}{'step (s)':>10}{'img/s':>10}{'peak MB':>10}"
              f"{'GFLOP/img':>11}{'MFU':>7}{'mmmim speed-up':>16}")
    for row in rows:
        ratio = f"{row['ratio']:.2f}x" if 'ratio' in row else ''
        print(f"{row['name']:<30}{row['step_s']:>10.4f}"
              f"{row['images_per_s']:>10.1f}{row['peak_mb']:>10.0f}"
              f"{row['gflop_per_image']:>11.1f}{row['mfu']:>7.1%}"
              f'{ratio:>16}')
    for compiled in modes:
        step = {r['name'].split(' (')[0]: r['step_s'] for r in rows
                if r['compiled'] == compiled}
        if 'mmmim hpm' in step and 'mmmim mae' in step:
            ratio = step['mmmim hpm'] / step['mmmim mae']
            result[f'hpm_over_mae{"_compiled" if compiled else ""}'] = ratio
            print(f"HPM / MAE step time{' (compiled)' if compiled else ''}:"
                  f' {ratio:.2f}x')
    for row in rows:
        if 'profile' in row:
            print(f"\n{row['name']}: {profile_line(row['profile'])}")
        elif 'profile_error' in row:
            print(f"\n{row['name']}: profile failed: {row['profile_error']}")
    if args.hpm_mask_batch:
        ms = time_hpm_mask(args.hpm_mask_batch) * 1e3
        result['hpm_mask_ms'] = ms
        print(f'\nHPM hard-patch mask, batch {args.hpm_mask_batch}, 196 '
              f'patches: {ms:.2f} ms')
    if args.pipeline:
        pipe = time_pipeline(args.pipeline, 64, tuple(args.pipeline_size),
                             args.device, args.batch_size)
        cores = available_cores()
        pipe['cores'] = cores
        result['pipeline'] = pipe
        print(f"\nImageNet pipeline ({PIPELINE_CONFIG}), {pipe['images']} "
              f"JPEGs {pipe['size']} q90 (mean {pipe['mean_kb']:.0f} kB), "
              'one core:')
        for name in PIPELINES:
            print(f'  {name:<26}{pipe[name]:>8.0f} img/s per core')
        dev = pipe['device_decode']
        print(f"  device decode on {dev['device']} (batch "
              f"{dev['batch_size']}): {dev['images_per_s']:.0f} img/s")
        if rows:
            print(f'cores needed to feed each step ({cores} here), config '
                  'pipeline / reduced-size decode / device decode; time the '
                  'device decode adds to the step; fed:')
            for row in rows:
                need, extra, fed = feeding(row, pipe)
                print(f"  {row['name']:<30}"
                      + ''.join(f'{n:>7.1f}' for n in need)
                      + f'{extra:>7.0%}  {fed}')
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    main()
