#!/usr/bin/env bash
# Build mmcv 2.1.0 with its compiled ops as a wheel, for one Python and the
# torch installed in it (the extension only loads beside that torch version).
#
#   bash tools/build_mmcv.sh PYTHON DEST_DIR    # writes DEST_DIR/mmcv-2.1.0-*.whl
#
# Used by tools/install.sh (when no prebuilt wheel matches) and by
# tools/gpu_prepare.sh --build-mmcv (for the GPU machine's Python and torch).
# PYTHON must be a virtual environment's python with torch installed; the
# build adds setuptools<80 (mmcv's setup.py imports pkg_resources), ninja and
# psutil to it. The ops are CPU kernels (mmmim's detection parts use
# torchvision's on CUDA: docs/gpu.md), also on a GPU machine; FORCE_CUDA=1
# builds mmcv's CUDA kernels too (needs a CUDA toolkit; hours). 12-21
# minutes on 2 cores (MAX_JOBS, default 2).
set -euo pipefail

if [ $# != 2 ]; then
  echo "usage: bash tools/build_mmcv.sh PYTHON DEST_DIR" >&2
  exit 2
fi
PY=$1
DEST=$2
MMCV_VERSION=2.1.0
say() { printf '[build_mmcv] %s\n' "$*"; }

PIP=("$PY" -m pip --disable-pip-version-check)
TORCH=$("$PY" -c 'import torch; print(torch.__version__)') ||
  { say "ERROR: $PY has no torch to build against"; exit 1; }
"${PIP[@]}" install -q "setuptools<80" wheel ninja psutil

# mmcv's setup.py (also run for the sdist's metadata) builds CUDA kernels
# whenever torch sees a GPU: that fails without a CUDA toolkit (a driver-only
# machine) and takes hours with one. Hide the GPU unless FORCE_CUDA=1.
if [ "${FORCE_CUDA:-0}" != 1 ]; then
  export CUDA_VISIBLE_DEVICES=
fi

BUILD=$(mktemp -d)
trap 'rm -rf "$BUILD"' EXIT
# --no-build-isolation: preparing the sdist's metadata runs its setup.py,
# which imports pkg_resources (gone from setuptools >= 80) and torch
"${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation \
  -d "$BUILD" "mmcv==$MMCV_VERSION"
tar -xzf "$BUILD/mmcv-$MMCV_VERSION.tar.gz" -C "$BUILD"
# torch >= 2.10 headers need C++20; mmcv 2.1.0 hard-codes -std=c++17.
sed -i 's/-std=c++17/-std=c++20/g' "$BUILD/mmcv-$MMCV_VERSION/setup.py"

say "building mmcv $MMCV_VERSION ops for $("$PY" --version) and torch $TORCH" \
    "(MAX_JOBS=${MAX_JOBS:-2}; 12-21 minutes on 2 cores)"
START=$(date +%s)
(cd "$BUILD/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} \
  "${PIP[@]}" wheel -q --no-build-isolation --no-deps -w "$BUILD/wheel" .)
mkdir -p "$DEST"
if command -v strip >/dev/null; then
  # Python's CFLAGS carry -g: debug information is 96 % of the wheel (32 MB,
  # 1.3 MB without), too much to carry to a GPU machine; strip and repack
  "$PY" -m wheel unpack -d "$BUILD/unpacked" "$BUILD"/wheel/mmcv-$MMCV_VERSION-*.whl
  find "$BUILD/unpacked" -name '*.so' -exec strip --strip-debug {} +
  "$PY" -m wheel pack -d "$DEST" "$BUILD/unpacked/mmcv-$MMCV_VERSION"
else
  cp "$BUILD"/wheel/mmcv-$MMCV_VERSION-*.whl "$DEST/"
fi
say "built $(cd "$DEST" && ls mmcv-$MMCV_VERSION-*.whl) in $(( $(date +%s) - START )) s"
