#!/usr/bin/env bash
# Prepare what tools/gpu_check.sh needs on a GPU machine that has Python and
# its own CUDA PyTorch but no OpenMMLab packages and no package registry:
#
#   bash tools/gpu_prepare.sh            # fills the git-ignored .gpu/
#
#   .gpu/wheels/        pure-Python wheels: mmengine, mmcv-lite (mmcv without
#                       compiled ops), mmpretrain and their small dependencies
#   .gpu/fashion-mnist/ the Fashion-MNIST IDX files the tiny test configs read
#
# Carry .gpu/ with the working tree (about 35 MB); gpu_check.sh installs the
# wheels into a throw-away virtual environment over the machine's own
# packages (torch, numpy, OpenCV, ... are used as they are there).
#
# mmdet and mmsegmentation are not carried: they import mmcv.ops, which needs
# mmcv compiled for that machine's Python and PyTorch (tools/install.sh
# builds it); without it the Mask R-CNN / UperNet GPU tests skip and say so.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=${MMMIM_GPU_DIR:-$ROOT/.gpu}
PYTHON_VERSION=${GPU_PYTHON_VERSION:-3.12}   # the GPU machine's Python
PY=${PYTHON:-python3}
FASHION_MNIST=${FASHION_MNIST_ROOT:-/usr/share/datasets/fashion-mnist}

# the versions tools/install.sh installs (mmcv-lite: mmcv 2.1.0 without ops)
# and the dependencies the GPU machine lacks
WHEELS=(
  mmengine==0.10.7 mmcv-lite==2.1.0 mmpretrain==1.2.0
  # importable without compiled mmcv (their models are not): the test
  # modules that import them collect, the downstream GPU tests skip
  mmdet==3.3.0 mmsegmentation==1.2.2
  addict==2.4.0 yapf==0.43.0 platformdirs==4.14.9 termcolor==3.3.0
  mat4py==0.6.0 model-index==0.1.11 ordered-set==4.1.0
  importlib-metadata==10.2.0 lazy-importer==0.1.0 zipp==4.1.2
  # mmengine resolves 'mmpretrain::' configs with pkg_resources
  "setuptools==79.0.1"
)

say() { printf '[gpu_prepare] %s\n' "$*"; }

mkdir -p "$DEST/wheels" "$DEST/fashion-mnist"
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
