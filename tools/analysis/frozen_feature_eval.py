"""Frozen-feature evaluation of a pre-trained encoder on ImageNet-style data.

    python tools/analysis/frozen_feature_eval.py CONFIG --checkpoint CKPT \
        [--device cuda] [--out-json results.json] [--cfg-options k=v ...]

The config (``configs/benchmarks/frozen_eval/``) names the encoder
(``model``, loaded with ``model.backbone.init_cfg``: every missing /
unexpected key is reported), the feature bank / training split
(``train_dataloader.dataset``), the evaluated split
(``test_dataloader.dataset``) and the protocol in ``frozen_eval``:

- ``dict(type='knn', ks=(10, 20, 100, 200), temperature=0.07)``: weighted
  kNN on l2-normalised features (DINO's classifier, HPM main_knn.py);
- ``dict(type='logistic', lambd=0.1)``: l2-regularised multinomial logistic
  regression on row-centred, l2-normalised features (SIM main_logistic.py).

Features are the backbone's output for unmasked images (e.g. the cls token
with ``out_type='cls_token'``), extracted once per split in one process.
``--save-features DIR`` keeps them (``train.pt`` / ``test.pt``) and
``--load-features DIR`` evaluates saved ones without a model. Checkpoints and
feature files are read without running code from them;
``--trust-checkpoint`` sets ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` for this
run, for a file you trust that needs more (docs/reliability.md).
"""
import argparse
import os
import os.path as osp
import sys
import time

import torch

# Run from a source checkout without installing.
sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

import mmengine  # noqa: E402
import mmmim  # noqa: E402,F401  (registers components)
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.logging import MMLogger, print_log  # noqa: E402
from mmpretrain.registry import DATASETS  # noqa: E402

from mmmim.evaluation import (extract_features, knn_topk_accuracies,  # noqa
                              logistic_regression_accuracy)
from mmmim.utils import build_model_from_config  # noqa: E402
from mmmim.utils.checkpoint import (TRUST_ENV,  # noqa: E402
                                    add_trust_checkpoint_argument,
                                    load_checkpoint_file)

PROTOCOLS = ('knn', 'logistic')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='kNN / logistic-regression accuracy of a frozen encoder')
    parser.add_argument('config', help='frozen-evaluation config')
    parser.add_argument('--checkpoint', help='pre-training checkpoint; '
                        'sets model.backbone.init_cfg.checkpoint')
    parser.add_argument('--device', default='cpu', help="e.g. 'cuda'")
    parser.add_argument('--batch-size', type=int, default=None,
                        help='inference batch size (default: the config)')
    parser.add_argument('--num-workers', type=int, default=None)
    parser.add_argument('--save-features', default=None, metavar='DIR')
    parser.add_argument('--load-features', default=None, metavar='DIR')
    parser.add_argument('--out-json', default=None)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    add_trust_checkpoint_argument(parser)
    args = parser.parse_args(argv)
    if args.checkpoint is None and args.load_features is None:
        parser.error('give --checkpoint CKPT or --load-features DIR')
    return args


def build_encoder(cfg: Config, checkpoint: str, device: str):
    """The config's model with its backbone loaded (checked) from
    ``checkpoint``, in eval mode on ``device``."""
    init_cfg = cfg.model.backbone.get('init_cfg') or dict(
        type='Pretrained', prefix='backbone.')
    model = build_model_from_config(cfg, cfg_options={
        'model.backbone.init_cfg': dict(init_cfg, checkpoint=checkpoint)})
    return model.to(device).eval()


def evaluate(protocol: dict, train, test) -> dict:
    """Run ``protocol`` on ``(feats, labels)`` pairs."""
    protocol = dict(protocol)
    kind = protocol.pop('type', None)
    if kind == 'knn':
        return knn_topk_accuracies(*train, *test, **protocol)
    if kind == 'logistic':
        return logistic_regression_accuracy(*train, *test, **protocol)
    raise ValueError(f'frozen_eval.type must be one of {PROTOCOLS}, got '
                     f'{kind!r}')


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.trust_checkpoint:
        os.environ[TRUST_ENV] = '1'  # the init_cfg loading reads it
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if 'frozen_eval' not in cfg:
        raise SystemExit(f'{args.config} has no frozen_eval protocol')
    logger = MMLogger.get_instance(f'frozen_feature_eval_{time.time_ns()}',
                                   log_level='INFO')
    splits = {}
    if args.load_features:
        for name in ('train', 'test'):
            saved = load_checkpoint_file(
                osp.join(args.load_features, f'{name}.pt'))
            splits[name] = (saved['feats'], saved['labels'])
    else:
        model = build_encoder(cfg, args.checkpoint, args.device)
        report = getattr(model.backbone, 'pretrained_load_report', None)
        for name in ('train', 'test'):
            loader_cfg = cfg[f'{name}_dataloader']
            dataset = DATASETS.build(loader_cfg.dataset)
            start = time.time()
            splits[name] = extract_features(
                model, dataset,
                batch_size=args.batch_size or loader_cfg.get(
                    'batch_size', 128),
                num_workers=(args.num_workers if args.num_workers is not None
                             else loader_cfg.get('num_workers', 0)))
            print_log(f'{name}: {len(dataset)} images -> features of shape '
                      f'{tuple(splits[name][0].shape)} in '
                      f'{time.time() - start:.0f} s', logger=logger)
        if args.save_features:
            os.makedirs(args.save_features, exist_ok=True)
            for name, (feats, labels) in splits.items():
                torch.save(dict(feats=feats, labels=labels),
                           osp.join(args.save_features, f'{name}.pt'))
    results = evaluate(cfg.frozen_eval, splits['train'], splits['test'])
    for key, value in results.items():
        print_log(f'{key}: {value:.4g}', logger=logger)
    out = dict(config=args.config, checkpoint=args.checkpoint,
               protocol=dict(cfg.frozen_eval), num_train=len(splits['train'][0]),
               num_test=len(splits['test'][0]), results=results)
    if not args.load_features and report is not None:
        out['load_report'] = dict(missing=report.missing,
                                  unexpected=report.unexpected,
                                  loaded=len(report.loaded))
    if args.out_json:
        mmengine.dump(out, args.out_json, indent=2)
    return out


if __name__ == '__main__':
    main()
