#!/usr/bin/env bash
# Prepare what tools/gpu_check.sh needs on a GPU machine that has Python and
# its own CUDA PyTorch but no OpenMMLab packages and no package registry:
#
#   bash tools/gpu_prepare.sh               # fills the git-ignored .gpu/
#   bash tools/gpu_prepare.sh --build-mmcv  # and mmcv's ops for that machine
#
#   .gpu/wheels/        wheels: mmengine, mmcv (compiled, with --build-mmcv)
#                       or mmcv-lite (no ops), mmpretrain, mmdet, mmseg and
#                       the small dependencies the GPU machine lacks
#   .gpu/fashion-mnist/ the Fashion-MNIST IDX files the tiny test configs read
#
# Carry .gpu/ with the working tree; gpu_check.sh installs the wheels into a
# throw-away virtual environment over the machine's own packages (torch,
# numpy, OpenCV, ... are used as they are there).
#
# mmdet and mmsegmentation import mmcv.ops, which loads mmcv's compiled
# extension: a build for the GPU machine's Python and torch version
# (GPU_PYTHON_VERSION, GPU_TORCH_VERSION) is needed for the Mask R-CNN /
# UperNet GPU tests, which skip and say so with mmcv-lite. --build-mmcv makes
# it here with tools/build_mmcv.sh (CPU kernels; RoIAlign and NMS on CUDA take
# torchvision's, docs/gpu.md), in a build environment of that Python with that
# torch (about 5 GB, GPU_BUILD_ENV) and 12-16 minutes on 2 cores; the wheel
# is kept, and a later run without --build-mmcv keeps using it. The Python
# comes from GPU_BUILD_PYTHON, python3.12 on PATH or pyenv.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=${MMMIM_GPU_DIR:-$ROOT/.gpu}
PYTHON_VERSION=${GPU_PYTHON_VERSION:-3.12}   # the GPU machine's Python
# the GPU machine's torch (docs/gpu.md: what its python3 holds)
GPU_TORCH_VERSION=${GPU_TORCH_VERSION:-2.11.0}
PY=${PYTHON:-python3}
FASHION_MNIST=${FASHION_MNIST_ROOT:-/usr/share/datasets/fashion-mnist}
BUILD_MMCV=0
case "${1:-}" in
  --build-mmcv) BUILD_MMCV=1 ;;
  '') ;;
  *) echo "usage: bash tools/gpu_prepare.sh [--build-mmcv]" >&2; exit 2 ;;
esac

say() { printf '[gpu_prepare] %s\n' "$*"; }
mkdir -p "$DEST/wheels" "$DEST/fashion-mnist"

# ---------------------------------- mmcv's compiled ops for the GPU machine
TAG=cp${PYTHON_VERSION/./}
BUILT_FOR=$DEST/wheels/mmcv-built-for.txt
WANT="python $PYTHON_VERSION torch $GPU_TORCH_VERSION"
if [ "$BUILD_MMCV" = 1 ] && ! { ls "$DEST"/wheels/mmcv-2.1.0-"$TAG"-*.whl >/dev/null 2>&1 &&
    [ "$(cat "$BUILT_FOR" 2>/dev/null)" = "$WANT" ]; }; then
  # the first candidate that runs (a pyenv shim may exist and not run)
  BPY=
  for candidate in ${GPU_BUILD_PYTHON:-} "python$PYTHON_VERSION" \
      "$HOME"/.pyenv/versions/"$PYTHON_VERSION".*/bin/python; do
    if "$candidate" -c "import sys; assert sys.version.startswith('$PYTHON_VERSION.')" 2>/dev/null; then
      BPY=$candidate
      break
    fi
  done
  [ -n "$BPY" ] || {
    say "ERROR: --build-mmcv needs Python $PYTHON_VERSION here (set GPU_BUILD_PYTHON)"; exit 1; }
  BENV=${GPU_BUILD_ENV:-$HOME/.cache/mmmim/gpu-build-py$PYTHON_VERSION-torch$GPU_TORCH_VERSION}
  if ! "$BENV/bin/python" -c "import torch; assert torch.__version__.split('+')[0] == '$GPU_TORCH_VERSION'" 2>/dev/null; then
    say "build environment $BENV: $("$BPY" --version) with torch $GPU_TORCH_VERSION"
    "$BPY" -m venv "$BENV"
    "$BENV/bin/python" -m pip install -q --disable-pip-version-check "torch==$GPU_TORCH_VERSION"
  fi
  rm -f "$DEST"/wheels/mmcv-2.1.0-"$TAG"-*.whl "$BUILT_FOR"
  bash "$ROOT/tools/build_mmcv.sh" "$BENV/bin/python" "$DEST/wheels"
  echo "$WANT" >"$BUILT_FOR"
fi
if ls "$DEST"/wheels/mmcv-2.1.0-"$TAG"-*.whl >/dev/null 2>&1; then
  say "mmcv with compiled ops: $(cd "$DEST/wheels" && ls mmcv-2.1.0-"$TAG"-*.whl)" \
      "($(cat "$BUILT_FOR" 2>/dev/null || echo 'torch version not recorded'))"
  MMCV=()
  rm -f "$DEST"/wheels/mmcv_lite-*.whl
else
  # mmcv 2.1.0 without ops: pre-training runs, mmdet / mmseg models do not
  MMCV=(mmcv-lite==2.1.0)
fi

# the versions tools/install.sh installs and the dependencies the GPU
# machine lacks (its python3's packages: docs/gpu.md)
WHEELS=(
  mmengine==0.10.7 "${MMCV[@]}" mmpretrain==1.2.0
  mmdet==3.3.0 mmsegmentation==1.2.2
  addict==2.4.0 yapf==0.43.0 platformdirs==4.14.9 termcolor==3.3.0
  mat4py==0.6.0 model-index==0.1.11 ordered-set==4.1.0
  importlib-metadata==10.2.0 lazy-importer==0.1.0 zipp==4.1.2
  # mmengine resolves 'mmpretrain::' configs with pkg_resources
  "setuptools==79.0.1"
  # mmmim's image loading (tools/install.sh installs it too)
  simplejpeg==1.9.0
  # mmdet's and mmseg's runtime needs that the GPU machine lacks (their
  # models, and so the test modules that import them, import these)
  pycocotools==2.0.11 shapely==2.2.0 terminaltables==3.1.10
  prettytable==3.19.0 wcwidth==0.9.4 ftfy==6.3.1
)

say "downloading ${#WHEELS[@]} wheels for Python $PYTHON_VERSION into $DEST/wheels"
"$PY" -m pip download -q --no-deps --only-binary=:all: \
  --python-version "$PYTHON_VERSION" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$DEST/wheels" "${WHEELS[@]}"

if ls "$FASHION_MNIST"/*-ubyte.gz >/dev/null 2>&1; then
  cp -u "$FASHION_MNIST"/*-ubyte.gz "$DEST/fashion-mnist/"
  say "copied Fashion-MNIST from $FASHION_MNIST"
else
  say "WARNING: no Fashion-MNIST in $FASHION_MNIST (Debian package" \
      "dataset-fashion-mnist): the GPU tests that train tiny models will skip"
fi
du -sh "$DEST" | while read -r size _; do say "$DEST holds $size"; done
say "done: carry .gpu with the working tree, then run bash tools/gpu_check.sh"
