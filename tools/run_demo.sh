#!/usr/bin/env bash
# The README's main command: a short pre-training demo on Fashion-MNIST.
#
#   bash tools/run_demo.sh [METHOD] [WORK_DIR]      # METHOD: hpm (default), mae, simmim, sim, itpn
#
# Trains configs/demo/<METHOD>_fashion-mnist.py on the CPU (a few minutes), then
# prints the kNN / linear-probe accuracy of the pre-trained encoder against the
# same encoder at random init, and writes a reconstruction picture (for HPM also
# the teacher's hard-patch picture).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
METHOD=${1:-hpm}
WORK_DIR=${2:-$ROOT/work_dirs/demo_$METHOD}
CONFIG=$ROOT/configs/demo/${METHOD}_fashion-mnist.py
PYTHON=${PYTHON:-python}
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$ROOT/.venv/bin/python" ]; then
  PYTHON="$ROOT/.venv/bin/python"
fi
if [ ! -f "$CONFIG" ]; then
  echo "no demo config for '$METHOD': $CONFIG" >&2
  exit 2
fi
cd "$ROOT"
echo "== pre-training $METHOD on Fashion-MNIST ($CONFIG)"
"$PYTHON" tools/train.py "$CONFIG" --work-dir "$WORK_DIR"
CKPT=$(cat "$WORK_DIR/last_checkpoint")  # relative to the work dir
case "$CKPT" in /*) ;; *) CKPT="$WORK_DIR/$CKPT" ;; esac
echo "== kNN / linear-probe accuracy of the frozen encoder (Fashion-MNIST test split)"
"$PYTHON" tools/analysis/evaluate_representation.py "$CONFIG" --checkpoint "$CKPT" \
  --compare-random-init --out-json "$WORK_DIR/representation.json"
if [ "$METHOD" != sim ]; then
  echo "== reconstruction picture"
  "$PYTHON" tools/analysis/visualize_reconstruction.py "$CONFIG" "$CKPT" \
    --out "$WORK_DIR/reconstruction.png"
fi
if [ "$METHOD" = hpm ]; then
  echo "== the teacher's predicted losses and the masks it mines (paper fig. 2)"
  "$PYTHON" tools/analysis/visualize_hpm.py "$CONFIG" "$CKPT" --out "$WORK_DIR/hard_patches.png"
fi
