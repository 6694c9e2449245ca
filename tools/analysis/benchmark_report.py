"""Markdown report of tools/analysis/benchmark.py's --json results (the
tables of tools/gpu_check.sh's report and docs/benchmarks.md).

    python tools/analysis/benchmark_report.py work_dirs/gpu_check/benchmark.json \
        work_dirs/gpu_check/benchmark_compiled.json
"""
import json
import os
import sys

PIPELINES = ('config (cv2 decode)', 'reduced-size decode',
             'device decode (host part)')


def feeding(row: dict, pipe: dict):
    """For one measured step: the cores each pipeline needs to feed it
    (``PIPELINES``' order), the time the device decode adds to the step
    (its time per image over the step's), and whether this machine feeds
    it and how."""
    need = [row['images_per_s'] / pipe[k] for k in PIPELINES]
    extra = row['images_per_s'] / pipe['device_decode']['images_per_s']
    cores = pipe['cores']
    fed = ('yes' if need[0] <= cores else
           'with reduced-size decode' if need[1] <= cores else
           f'with device decode (+{extra:.0%} step time)'
           if need[2] <= cores else 'no')
    return need, extra, fed


def profile_line(prof: dict) -> str:
    """One line of a step's profile (benchmark.py --profile)."""
    busy = (f"device busy {prof['busy_share']:.0%} of the step; "
            if 'busy_share' in prof else '')
    groups = ', '.join(f'{g} {v:.0%}' for g, v in prof['groups'].items())
    top = ', '.join(f"{t['op']} {t['share']:.0%}" for t in prof['top'])
    return f'{busy}self time by group: {groups}; top ops: {top}'


def goal_lines(rows) -> list:
    """The performance goals (H100/H200-class GPU, bf16): met or not."""
    best = {}
    for row in rows:
        key = row['name'].split(' (')[0]
        if key not in best or row['step_s'] < best[key]['step_s']:
            best[key] = row

    def check(label, ok, detail):
        return f"- {label}: {'met' if ok else 'NOT met'} ({detail})"

    lines = []
    if 'mmmim mae' in best:
        mfu = best['mmmim mae']['mfu']
        lines.append(check('MAE ViT-B MFU >= 40%', mfu >= 0.4, f'{mfu:.1%}'))
    for method, goal in (('mae', 1.2), ('itpn', 1.0)):
        ours, ref = best.get(f'mmmim {method}'), best.get(
            f'mmpretrain {method}')
        if ours and ref:
            ratio = ref['step_s'] / ours['step_s']
            lines.append(check(f'{method} >= {goal}x mmpretrain\'s '
                               f'(best mmmim step / mmpretrain eager)',
                               ratio >= goal, f'{ratio:.2f}x'))
    if 'mmmim hpm' in best and 'mmmim mae' in best:
        ratio = best['mmmim hpm']['step_s'] / best['mmmim mae']['step_s']
        lines.append(check('HPM step <= 2.3x MAE\'s', ratio <= 2.3,
                           f'{ratio:.2f}x'))
    return lines


def render_markdown(paths) -> str:
    """The report's tables from ``--json`` results."""
    results = [json.load(open(p)) for p in paths if os.path.isfile(p)]
    if not results:
        return 'No benchmark results (see the logs).'
    first = results[0]
    out = [f"{first['device_name']} ({first['device']}), {first['precision']}"
           f", batch {first['batch_size']}, {first['img_size']} px, torch "
           f"{first['torch']}; matmul rate ({first['matmul_size']}^3): "
           f"**{first['matmul_flop_per_s'] / 1e12:.1f} TFLOP/s**", '',
           '| model | step (ms) | img/s | peak GB | GFLOP/img | MFU | '
           'mmmim speed-up |', '| --- | ---: | ---: | ---: | ---: |'
           ' ---: | ---: |']
    rows = [r for res in results for r in res['rows']]
    for r in rows:
        ratio = f"{r['ratio']:.2f}x" if 'ratio' in r else ''
        out.append(f"| {r['name']} | {r['step_s'] * 1e3:.1f} | "
                   f"{r['images_per_s']:.0f} | {r['peak_mb'] / 1024:.1f} | "
                   f"{r['gflop_per_image']:.1f} | {r['mfu']:.1%} | {ratio} |")
    goals = goal_lines(rows)
    if goals and first['device'].startswith('cuda'):
        out += ['', 'Goals (bf16, H100/H200-class):'] + goals
    profiled = [r for r in rows if 'profile' in r or 'profile_error' in r]
    if profiled:
        out += ['', 'Where one eager step spends its time (`--profile`, '
                'torch.profiler, self time):', '']
        out += [f"- {r['name']}: " + (profile_line(r['profile'])
                                      if 'profile' in r else
                                      f"profile failed: {r['profile_error']}")
                for r in profiled]
    pipe = first.get('pipeline')
    if pipe:
        dev = pipe['device_decode']
        out += ['', f"ImageNet pipeline ({pipe['images']} JPEGs "
                f"{pipe['size']} q{pipe['quality']}, mean "
                f"{pipe['mean_kb']:.0f} kB), one core: "
                + ', '.join(f"{k} **{pipe[k]:.0f} img/s**" for k in PIPELINES)
                + f"; the device decode's part on {dev['device']} (batch "
                f"{dev['batch_size']}): **{dev['images_per_s']:.0f} img/s**;"
                f" this machine has {pipe['cores']} cores.", '',
                '| model | img/s | cores needed (config / reduced-size '
                'decode / device decode) | device decode adds | '
                'fed by this machine |',
                '| --- | ---: | ---: | ---: | --- |']
        for r in rows:
            need, extra, fed = feeding(r, pipe)
            out.append(f"| {r['name']} | {r['images_per_s']:.0f} | "
                       + ' / '.join(f'{n:.1f}' for n in need)
                       + f' | {extra:.0%} | {fed} |')
    return '\n'.join(out)


if __name__ == '__main__':
    print(render_markdown(sys.argv[1:]))
