"""tools/gpu_check.sh's CPU rehearsal (--dry-run) runs every phase (a GPU
test, the benchmark with its FLOP count and matmul rate, the pipeline
timing) and writes the report, as it will on a GPU machine."""
import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import requires_fashion_mnist

ROOT = Path(__file__).resolve().parents[1]


@requires_fashion_mnist
def test_gpu_check_dry_run_writes_the_report(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1')
    env.pop('OUT', None)
    proc = subprocess.run(
        ['bash', 'tools/gpu_check.sh', '--dry-run', '--out', str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = (tmp_path / 'gpu_report.md').read_text()
    # the test phase: the CPU variants of two GPU tests (HPM's teacher,
    # decoding on the device), the UperNet and Mask R-CNN steps (compiled
    # mmcv here, so none skips)
    assert '4 passed' in report
    assert '| mmmim mae |' in report
    assert 'ImageNet pipeline (8 JPEGs 500x375 q90' in report
    result = json.loads((tmp_path / 'benchmark.json').read_text())
    assert result['device'] == 'cpu' and result['matmul_flop_per_s'] > 0
    row, = result['rows']
    # a tiny MAE step at 224 px still does work, and it is counted
    assert row['gflop_per_image'] > 0.01 and 0 < row['mfu'] < 10
    assert row['images_per_s'] > 0 and row['peak_mb'] > 0
    # the profiled step: self time split into groups that add up, the
    # step's matmuls counted, the top ops by share (CPU: no device-busy
    # share). Which ops lead a tiny CPU step depends on the machine's load
    # (aten::mm was 8th at 3 %), so no op is required among them.
    prof = row['profile']
    assert abs(sum(prof['groups'].values()) - 1) < 1e-6
    assert prof['groups']['matmul / conv'] > 0 and prof['time_s'] > 0
    shares = [t['share'] for t in prof['top']]
    assert len(shares) == 8 and shares == sorted(shares, reverse=True)
    assert 0 < sum(shares) <= 1 + 1e-9
    assert 'busy_share' not in prof
    assert '- mmmim mae: self time by group: matmul / conv' in report
    pipeline = result['pipeline']
    assert pipeline['config (cv2 decode)'] > 0
    assert pipeline['reduced-size decode'] > 0
    assert pipeline['device decode (host part)'] > 0
    assert pipeline['device_decode']['device'] == 'cpu'
    assert pipeline['device_decode']['images_per_s'] > 0
    assert '| mmmim mae | ' in report and 'device decode adds' in report
