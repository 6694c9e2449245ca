#!/usr/bin/env bash
# The GPU check: on one CUDA GPU, in under 8 minutes, the GPU tests and the
# pre-training benchmark, written to one report.
#
#   bash tools/gpu_prepare.sh --build-mmcv   # where pip works: fills .gpu/
#   bash tools/gpu_check.sh          # on the GPU machine, from the repo root
#   bash tools/gpu_check.sh --dry-run   # CPU rehearsal at tiny sizes (~2 min)
#
# Phases (each under its own time limit, so the report is always written):
#   1. pytest -m cuda tests/     the GPU test suite (bf16 steps, exact resume,
#                                masks / teachers on the device, no host sync,
#                                Mask R-CNN / UperNet where mmcv has ops)
#   2. benchmark.py --device cuda --precision bf16 --batch-size 256, all five
#      methods at ViT-B / HiViT-B 224 px with mmpretrain's MAE and iTPN, the
#      matmul rate, MFU, one profiled step of MAE and HPM, the ImageNet
#      pipeline's images/s per CPU core and of decoding on the GPU
#   3. benchmark.py --compile on for --compile-methods (default: mae)
# Report: $OUT/gpu_report.md (OUT: a folder of your choice) or
# work_dirs/gpu_check/gpu_report.md, next to the logs and JSON results.
#
# Environment: the machine's python3 with its CUDA torch. Without mmpretrain
# there, the wheels in .gpu/wheels (tools/gpu_prepare.sh; MMMIM_GPU_DIR for
# another folder than .gpu) are installed into a throw-away virtual
# environment (MMMIM_GPU_ENV, default /tmp/mmmim-gpu-env, made afresh) that
# also sees python3's own packages.
#
# Options: --dry-run, --device DEV, --batch-size N, --methods "a b",
#   --compile-methods "a b" ('' for none), --pipeline N (images; 0: off),
#   --no-tests, --out DIR, --install-wheels (use .gpu/wheels even where
#   python3 has mmpretrain)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DEVICE=cuda PRECISION=bf16 BATCH=256 WARMUP=3 ITERS=10
METHODS="mae hpm simmim sim itpn" COMPILE_METHODS="mae" PIPELINE=512
PROFILE_METHODS="mae hpm"  # one eager step profiled: where an MFU gap comes from
TESTS=1 DRY=0 INSTALL=0
OUT_DIR=${OUT:-$ROOT/work_dirs/gpu_check}
# seconds per phase: tests, eager benchmark, compiled benchmark
T_TESTS=170 T_BENCH=170 T_COMPILE=100

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --device) DEVICE=$2; shift ;;
    --batch-size) BATCH=$2; shift ;;
    --methods) METHODS=$2; shift ;;
    --compile-methods) COMPILE_METHODS=$2; shift ;;
    --pipeline) PIPELINE=$2; shift ;;
    --no-tests) TESTS=0 ;;
    --install-wheels) INSTALL=1 ;;
    --out) OUT_DIR=$2; shift ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

BENCH_EXTRA=()
TEST_ARGS=(-m cuda tests)
if [ "$DRY" = 1 ]; then
  # tiny MAE on the CPU: every phase runs, nothing is measured
  DEVICE=cpu PRECISION=fp32 BATCH=2 WARMUP=1 ITERS=1 METHODS=mae
  COMPILE_METHODS="" PIPELINE=8
  BENCH_EXTRA=(--no-mmpretrain --matmul-size 256 --cfg-options
    "model.backbone.arch={'_delete_':True,'embed_dims':32,'num_layers':1,'num_heads':2,'feedforward_channels':64}"
    model.neck.embed_dim=32 model.neck.decoder_embed_dim=16
    model.neck.decoder_depth=1 model.neck.decoder_num_heads=2)
  # the CPU variants of two GPU tests and of the downstream steps (with
  # --install-wheels: whether the carried wheels run Mask R-CNN / UperNet)
  TEST_ARGS=(tests/test_gpu.py tests/test_detection_ops.py
    tests/test_device_decode.py
    -k "(hpm_teacher or upernet or grey_level) and cpu or mask_rcnn_step_same")
  T_TESTS=900 T_BENCH=900  # CPU timings mean nothing here
fi

mkdir -p "$OUT_DIR"
REPORT=$OUT_DIR/gpu_report.md
say() { printf '[gpu_check] %s\n' "$*"; }

# ------------------------------------------------------------ environment
PY=${PYTHON:-python3}
GPU_DIR=${MMMIM_GPU_DIR:-$ROOT/.gpu}   # what tools/gpu_prepare.sh filled
WHEELS_USED=0
if [ "$INSTALL" = 1 ] || ! "$PY" -c 'import mmpretrain' 2>/dev/null; then
  if ! ls "$GPU_DIR"/wheels/*.whl >/dev/null 2>&1; then
    say "no mmpretrain and no $GPU_DIR/wheels: run tools/gpu_prepare.sh where" \
        "pip works and carry $GPU_DIR here (or bash tools/install.sh)"
    exit 1
  fi
  ENV=${MMMIM_GPU_ENV:-/tmp/mmmim-gpu-env}
  say "installing $GPU_DIR/wheels into $ENV (over the machine's packages)"
  # a virtual environment of its own whose site-packages (the wheels) come
  # first, then python3's own (torch, numpy, ... and their .pth files); a
  # venv's --system-site-packages would skip those when python3 is a venv;
  # made afresh (--clear): one left by another Python keeps that Python
  SITES=$("$PY" -c 'import site; print(repr(site.getsitepackages()))')
  "$PY" -m venv --clear --without-pip "$ENV" &&
    SITE_DIR=$("$ENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') &&
    echo "import site; list(map(site.addsitedir, $SITES))" >"$SITE_DIR/zz_machine_packages.pth" &&
    "$ENV/bin/python" -m pip install -q --no-index --no-deps --no-compile \
      --no-cache-dir --ignore-installed --disable-pip-version-check \
      "$GPU_DIR"/wheels/*.whl ||
    { say "could not install $GPU_DIR/wheels"; exit 1; }
  PY=$ENV/bin/python
  WHEELS_USED=1
  "$PY" -c 'import distutils, pkg_resources, mmpretrain, torch' ||
    { say "the wheels do not import (above)"; exit 1; }
fi
FM=/usr/share/datasets/fashion-mnist
if [ ! -f "$FM/t10k-images-idx3-ubyte.gz" ] && ls "$GPU_DIR"/fashion-mnist/*.gz >/dev/null 2>&1; then
  mkdir -p "$FM" 2>/dev/null && cp "$GPU_DIR"/fashion-mnist/*.gz "$FM/" 2>/dev/null &&
    say "placed Fashion-MNIST in $FM" ||
    say "could not write $FM: the tests that need Fashion-MNIST will fail"
fi
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
# deterministic cuBLAS for the exact-resume test (set before CUDA starts)
export CUBLAS_WORKSPACE_CONFIG=${CUBLAS_WORKSPACE_CONFIG:-:4096:8}

START=$(date +%s)
{
  echo "# GPU check"
  echo
  echo "\`bash tools/gpu_check.sh$([ "$DRY" = 1 ] && echo ' --dry-run')\`," \
       "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo
  echo '```'
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  "$PY" - <<'EOF'
import importlib.metadata as md, os, platform, torch
print('python', platform.python_version(), '| torch', torch.__version__,
      '| CUDA', torch.version.cuda, '| GPU',
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none',
      '| cpu cores', len(os.sched_getaffinity(0)))
versions = []
for name in ('mmengine', 'mmcv', 'mmcv-lite', 'mmpretrain', 'mmdet',
             'mmsegmentation'):
    try:
        versions.append(f'{name} {md.version(name)}')
    except md.PackageNotFoundError:
        pass
try:  # mmdet / mmseg need it (tools/gpu_prepare.sh --build-mmcv)
    import mmcv._ext  # noqa: F401
    ops = 'yes'
except ImportError as err:
    ops = f'no ({err})'
print(' | '.join(versions), '| mmcv compiled ops:', ops)
EOF
  if [ "$WHEELS_USED" = 1 ] && [ -f "$GPU_DIR/wheels/mmcv-built-for.txt" ]; then
    echo "mmcv wheel built for $(cat "$GPU_DIR/wheels/mmcv-built-for.txt")"
  fi
  echo '```'
} >"$REPORT" 2>&1

# run a phase under a time limit, keep its log, note a timeout
phase() {
  local name=$1 limit=$2 log=$3
  shift 3
  say "$name (limit ${limit}s)"
  timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
  local rc=$?
  tail -n 60 "$log"
  if [ $rc = 124 ] || [ $rc = 137 ]; then
    echo "**$name stopped at its ${limit}s limit** (log: $(basename "$log"))" >>"$REPORT"
  elif [ $rc != 0 ]; then
    echo "**$name failed (exit $rc)** (log: $(basename "$log"))" >>"$REPORT"
  fi
  [ $rc = 0 ] || FAILED=1
  return $rc
}
FAILED=0

# ------------------------------------------------------------------ tests
if [ "$TESTS" = 1 ]; then
  phase "GPU tests" "$T_TESTS" "$OUT_DIR/tests.log" \
    "$PY" -m pytest -q -p no:cacheprovider -rs --continue-on-collection-errors \
    "${TEST_ARGS[@]}"
  {
    echo
    echo "## Tests: \`pytest ${TEST_ARGS[*]}\`"
    echo
    echo '```'
    grep -E '^(SKIPPED|FAILED|ERROR)|passed|failed|error' "$OUT_DIR/tests.log" | tail -n 40
    echo '```'
  } >>"$REPORT"
fi

# -------------------------------------------------------------- benchmark
BENCH=(tools/analysis/benchmark.py --device "$DEVICE" --precision "$PRECISION"
  --batch-size "$BATCH" --warmup "$WARMUP" --iters "$ITERS")
# shellcheck disable=SC2086
phase "benchmark" "$T_BENCH" "$OUT_DIR/benchmark.log" \
  "$PY" "${BENCH[@]}" --methods $METHODS --pipeline "$PIPELINE" \
  --profile $PROFILE_METHODS --json "$OUT_DIR/benchmark.json" "${BENCH_EXTRA[@]}"
JSONS=("$OUT_DIR/benchmark.json")
if [ -n "$COMPILE_METHODS" ]; then
  # shellcheck disable=SC2086
  phase "benchmark, compiled" "$T_COMPILE" "$OUT_DIR/benchmark_compiled.log" \
    "$PY" "${BENCH[@]}" --methods $COMPILE_METHODS --compile on \
    --no-mmpretrain --json "$OUT_DIR/benchmark_compiled.json" "${BENCH_EXTRA[@]}"
  JSONS+=("$OUT_DIR/benchmark_compiled.json")
fi
{
  echo
  echo "## Benchmark: \`python ${BENCH[*]} --methods $METHODS --pipeline $PIPELINE --profile $PROFILE_METHODS ${BENCH_EXTRA[*]}\`"
  [ -n "$COMPILE_METHODS" ] && echo "and \`--methods $COMPILE_METHODS --compile on --no-mmpretrain\`"
  echo
  "$PY" tools/analysis/benchmark_report.py "${JSONS[@]}"
  echo
  echo "Total time: $(( $(date +%s) - START )) s"
} >>"$REPORT" 2>&1
say "report: $REPORT"
cat "$REPORT"
exit $FAILED
