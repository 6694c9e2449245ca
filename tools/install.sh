#!/usr/bin/env bash
# One-command environment for mmmim on current PyTorch.
#
#   bash tools/install.sh                 # creates ./.venv and installs everything
#   MMMIM_WHEELHOUSE=../shared/wheels bash tools/install.sh   # use a prebuilt mmcv wheel
#
# The frozen OpenMMLab stack (mmengine 0.10.7, mmcv 2.1.0, mmpretrain 1.2.0, mmdet 3.3.0,
# mmsegmentation 1.2.2) does not install as released on torch 2.14; this script makes it:
#   * mmcv 2.1.0 with compiled ops from $MMMIM_WHEELHOUSE when a matching wheel is there, otherwise
#     built from the sdist by tools/build_mmcv.sh (patched for C++20, MMCV_WITH_OPS=1,
#     --no-build-isolation, setuptools<80; CPU ops, 15-20 minutes on 2 cores);
#   * setuptools<80 also keeps pkg_resources, which mmcv's setup.py and mmengine's `pkg::` config
#     bases import.
# It is idempotent: when nothing it installs has changed, a second run only checks the imports.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MMMIM_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

TORCH_SPEC="torch==2.14.1 torchvision==0.29.1"
MMCV_VERSION=2.1.0
OPENMMLAB_SPEC="mmengine==0.10.7 mmpretrain==1.2.0 mmdet==3.3.0 mmsegmentation==1.2.2"
EXTRA_SPEC="timm>=1.0,<2 simplejpeg>=1.6 pycocotools ftfy regex pytest scikit-image"
# Everything above decides what gets installed: hash it so an unchanged second run is a no-op.
STAMP_KEY=$(printf '%s\n' "$TORCH_SPEC" "$MMCV_VERSION" "$OPENMMLAB_SPEC" "$EXTRA_SPEC" \
  "$(cat "$ROOT/setup.py")" | sha256sum | cut -c1-16)
STAMP=$VENV/.mmmim-installed-$STAMP_KEY

say() { printf '[install] %s\n' "$*"; }
CHECK='import mmcv, mmcv.ops, mmdet, mmseg, mmpretrain, mmmim; print("mmcv", mmcv.__version__, "| mmpretrain", mmpretrain.__version__, "| mmmim", mmmim.__version__, "| mmcv ops CUDA:", mmcv.ops.get_compiling_cuda_version(), "(else torchvision kernels on CUDA: docs/gpu.md)")'

install_fashion_mnist() {
  if [ -d /usr/share/datasets/fashion-mnist ]; then
    return
  fi
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing Debian package dataset-fashion-mnist (demo and test data)"
    apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || {
      apt-get update -q >/dev/null 2>&1 || true
      apt-get install -y -q dataset-fashion-mnist >/dev/null || say "WARNING: could not install dataset-fashion-mnist"
    }
  else
    say "apt-get not available: skipping dataset-fashion-mnist (tests that need it will skip)"
  fi
}

install_fashion_mnist

if [ -f "$STAMP" ] && "$VENV/bin/python" -c "$CHECK" 2>/dev/null; then
  say "environment in $VENV is up to date"
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtual environment $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade "pip<26.2" "setuptools<80" wheel

say "installing $TORCH_SPEC"
"${PIP[@]}" install -q $TORCH_SPEC

say "installing mmengine"
"${PIP[@]}" install -q mmengine==0.10.7

if "$VENV/bin/python" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; then
  say "mmcv $MMCV_VERSION with ops already installed"
else
  installed_from_wheel=0
  if [ -n "${MMMIM_WHEELHOUSE:-}" ] && [ -d "$MMMIM_WHEELHOUSE" ]; then
    say "looking for a prebuilt mmcv $MMCV_VERSION wheel in $MMMIM_WHEELHOUSE"
    if "${PIP[@]}" install -q --no-deps --no-index --find-links "$MMMIM_WHEELHOUSE" "mmcv==$MMCV_VERSION"; then
      installed_from_wheel=1
    else
      say "no matching wheel in $MMMIM_WHEELHOUSE"
    fi
  fi
  if [ "$installed_from_wheel" = 0 ]; then
    say "building mmcv $MMCV_VERSION with compiled ops from source: this takes 15-20 minutes on 2 cores"
    BUILD=$(mktemp -d)
    bash "$ROOT/tools/build_mmcv.sh" "$VENV/bin/python" "$BUILD"
    "${PIP[@]}" install -q --no-deps "$BUILD"/mmcv-$MMCV_VERSION-*.whl
    rm -rf "$BUILD"
  fi
  # mmcv's own runtime requirements (the wheel was installed without deps)
  "${PIP[@]}" install -q addict "numpy" packaging Pillow pyyaml yapf opencv-python
  "$VENV/bin/python" -c "import mmcv.ops" || { say "ERROR: mmcv.ops does not import"; exit 1; }
fi

say "installing mmpretrain, mmdet, mmsegmentation, timm and test tools"
"${PIP[@]}" install -q $OPENMMLAB_SPEC $EXTRA_SPEC "mmcv==$MMCV_VERSION" "setuptools<80"

say "installing mmmim (editable)"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"

"$VENV/bin/python" -c "$CHECK"
touch "$STAMP"
say "done: activate with 'source $VENV/bin/activate'"
