#!/usr/bin/env bash
# Distributed training with torchrun.
#
#   tools/dist_train.sh CONFIG GPUS [train.py args...]
#
# One machine: GPUS processes (on a CPU-only machine, GPUS gloo processes).
# Several machines: set NNODES, NODE_RANK, MASTER_ADDR and PORT on each, e.g.
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 tools/dist_train.sh CONFIG 8   # first machine
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 tools/dist_train.sh CONFIG 8   # second machine
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 CONFIG GPUS [train.py args...]" >&2
  exit 2
fi
CONFIG=$1
GPUS=$2
shift 2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=${PYTHON:-python}
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$DIR/../.venv/bin/python" ]; then
  PYTHON="$DIR/../.venv/bin/python"
fi
# One thread per process unless the user says otherwise (torchrun would force 1 with a warning).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export PYTHONPATH="$DIR/..:${PYTHONPATH:-}"
# a missing data path: one line now, not a traceback from every rank
"$PYTHON" "$DIR/train.py" "$CONFIG" --check-data "$@"
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$DIR/train.py" "$CONFIG" --launcher pytorch "$@"
