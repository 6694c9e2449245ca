"""Evaluate a checkpoint with the config's test loop (mmpretrain / mmdet / mmseg).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options k=v ...]
                                           [--launcher pytorch] [--trust-checkpoint]

The checkpoint is read by mmengine's loader with torch's weights-only
unpickler and mmmim's allow-list (``mmmim.utils.checkpoint``);
``--trust-checkpoint`` sets ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` for this
run, for a file you trust that needs more.
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import mmmim  # noqa: F401  (registers components, checkpoint allow-list)
from mmmim.utils import init_cpu_process_group
from mmmim.utils.checkpoint import (TRUST_ENV, add_trust_checkpoint_argument,
                                    explain_unsafe_checkpoint)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and results')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_trust_checkpoint_argument(parser)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None):
    args = parse_args(argv)
    for path in (args.config, args.checkpoint):
        if not osp.isfile(path):
            sys.exit(f'File not found: {path}')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    if args.trust_checkpoint:
        os.environ[TRUST_ENV] = '1'  # mmengine's loader leaves it to torch
    if init_cpu_process_group(cfg.launcher) and 'model_wrapper_cfg' not in cfg:
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                                     device_ids=None)
    runner = Runner.from_cfg(cfg)
    with explain_unsafe_checkpoint(args.checkpoint):
        runner.test()


if __name__ == '__main__':
    main()
