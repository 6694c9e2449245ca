"""Train any mmpretrain / mmdet / mmseg config with mmmim's components available.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                                 [--cfg-options k=v ...] [--launcher pytorch]
    python tools/train.py CONFIG --check-data [...]   # only check the data paths

The config's ``default_scope`` decides which library's registries build the
runner's parts; ``import mmmim`` (done here and by ``custom_imports``) registers
mmmim's components. Every config runs with ``mmmim.engine.ResilientRunner``
(atomic checkpoints, verified resume, mmmim's DDP wrapper; see
docs/reliability.md) unless it names a ``runner_type``. A data path of the
config that does not exist stops with one line before anything starts
(workers, process group); ``tools/dist_train.sh`` checks before it starts the
ranks.
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint; without a path, resume from '
        'the latest checkpoint in the work dir')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision training: fp16 with dynamic loss scaling on a '
        'GPU, bf16 autocast (AutocastOptimWrapper) without one')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not evaluate during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the actual total batch size')
    parser.add_argument(
        '--no-pin-memory',
        action='store_true',
        help='do not pin memory in the dataloaders')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value (e.g. '
        'model.backbone.arch=tiny train_dataloader.batch_size=8)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--check-data',
        action='store_true',
        help='only check that the data paths of the config exist')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg, args):
    """Apply the command-line arguments to the config."""
    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None

    cfg.launcher = args.launcher

    # work_dir: command line > config > ./work_dirs/<config name>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper not in ('OptimWrapper', 'AmpOptimWrapper'):
            raise ValueError('--amp needs an OptimWrapper or AmpOptimWrapper, '
                             f'the config uses {optim_wrapper}')
        import torch
        if torch.cuda.is_available():
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
        else:  # fp16 autocast needs a GPU; bf16 needs no loss scaling
            cfg.optim_wrapper.type = 'mmpretrain.AutocastOptimWrapper'
            cfg.optim_wrapper.pop('loss_scale', None)
            cfg.optim_wrapper.dtype = 'bfloat16'

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    if args.auto_scale_lr:
        cfg.setdefault('auto_scale_lr', {})['enable'] = True

    if args.no_pin_memory:
        for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            if cfg.get(name) is not None:
                cfg[name]['pin_memory'] = False

    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def missing_data_path(cfg) -> str:
    """'KEY: PATH does not exist' for the first local data path (data_root,
    ann_file, data_prefix of every dataloader's dataset, wrapped datasets
    included) that does not exist; '' when all do."""

    def datasets(dataset, key):
        if not isinstance(dataset, dict):
            return
        yield dataset, key
        yield from datasets(dataset.get('dataset'), key + '.dataset')
        for i, inner in enumerate(dataset.get('datasets') or []):
            yield from datasets(inner, f'{key}.datasets[{i}]')

    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if not isinstance(cfg.get(loader), dict):
            continue
        for dataset, key in datasets(cfg[loader].get('dataset'),
                                     loader + '.dataset'):
            root = dataset.get('data_root') or ''
            paths = [('data_root', root)]
            if dataset.get('ann_file'):
                paths.append(('ann_file', osp.join(root, dataset.ann_file)))
            prefix = dataset.get('data_prefix')
            for name, value in (prefix.items() if isinstance(prefix, dict)
                                else [('', prefix)]):
                if isinstance(value, str) and value:
                    paths.append((f'data_prefix{"." if name else ""}{name}',
                                  osp.join(root, value)))
            for name, path in paths:
                if path and '://' not in path and not osp.exists(path):
                    return (f'{key}.{name}: {path} does not exist (from '
                            f'{os.getcwd()}; set it with --cfg-options '
                            f'{key}.{name}=...)')
    return ''


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.config):
        sys.exit(f'Config file not found: {args.config}')
    cfg = Config.fromfile(args.config, import_custom_modules=False)
    cfg = merge_args(cfg, args)
    missing = missing_data_path(cfg)
    if missing:
        # one line, once, before workers or ranks start
        if os.environ.get('RANK', '0') == '0':
            print(f'Data not found: {missing}', file=sys.stderr)
        sys.exit(1)
    if args.check_data:
        return

    import torch
    from mmengine.registry import RUNNERS
    from mmengine.utils import import_modules_from_strings

    import mmmim  # noqa: F401  (registers components)
    from mmmim.engine import ResilientRunner
    from mmmim.utils import init_cpu_process_group
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)

    # multi-process training on a machine without a GPU uses gloo (the
    # runner wraps the model for it)
    init_cpu_process_group(cfg.launcher)
    runner = (RUNNERS.build(cfg) if 'runner_type' in cfg else
              ResilientRunner.from_cfg(cfg))
    runner.train()
    # leave together: a rank that exits while another still talks to it
    # through gloo can abort the other ("terminate called ...")
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == '__main__':
    main()
