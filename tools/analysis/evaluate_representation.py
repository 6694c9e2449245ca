"""kNN and linear-probe accuracy of a pre-trained encoder on Fashion-MNIST.

    python tools/analysis/evaluate_representation.py CONFIG --checkpoint CKPT
    python tools/analysis/evaluate_representation.py CONFIG --checkpoint CKPT \
        --compare-random-init --out-json results.json
    python tools/analysis/evaluate_representation.py CONFIG --random-init

The backbone of the config's model is run frozen on unmasked images (features
= global average pool of its last map); the kNN bank and the probe use the
first ``--num-train`` training images, accuracy is measured on the first
``--num-test`` test images. See docs/evaluation.md.
"""
import argparse
import os.path as osp
import sys
import time

import torch

# Run from a source checkout without installing.
sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

import mmengine  # noqa: E402
import mmmim  # noqa: E402,F401  (registers components)
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import set_random_seed  # noqa: E402

from mmmim.evaluation import (evaluate_features, extract_features,  # noqa
                              fashion_mnist_splits)
from mmmim.models.utils import load_pretrained_checked  # noqa: E402
from mmmim.utils import build_model_from_config  # noqa: E402
from mmmim.utils.checkpoint import (add_trust_checkpoint_argument,  # noqa
                                    load_checkpoint_file, unwrap_state_dict)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='kNN / linear-probe accuracy of a frozen encoder on '
        'Fashion-MNIST')
    parser.add_argument('config', help='pre-training config file')
    parser.add_argument('--checkpoint', help='checkpoint to evaluate')
    parser.add_argument('--random-init', action='store_true',
                        help='evaluate the randomly initialised model only')
    parser.add_argument('--compare-random-init', action='store_true',
                        help='with --checkpoint: also evaluate the same model '
                        'at random init and print the difference')
    parser.add_argument('--num-train', type=int, default=10000,
                        help='training images (kNN bank, probe training)')
    parser.add_argument('--num-test', type=int, default=2000,
                        help='test images accuracy is measured on')
    parser.add_argument('--img-size', type=int, default=None,
                        help="image size; defaults to the config's img_size "
                        "or its train dataset's img_size")
    parser.add_argument('--k', type=int, default=20, help='kNN neighbours')
    parser.add_argument('--temperature', type=float, default=0.07,
                        help='kNN vote temperature')
    parser.add_argument('--no-linear', action='store_true',
                        help='skip the linear probe')
    parser.add_argument('--linear-epochs', type=int, default=30)
    parser.add_argument('--batch-size', type=int, default=256,
                        help='inference batch size')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the random init and of the probe')
    parser.add_argument('--data-root', default=None,
                        help='folder with the Fashion-MNIST IDX .gz files')
    parser.add_argument('--out-json', default=None,
                        help='write the results to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    add_trust_checkpoint_argument(parser)
    args = parser.parse_args(argv)
    if args.checkpoint is None and not args.random_init:
        parser.error('give --checkpoint CKPT and/or --random-init')
    if args.compare_random_init and args.checkpoint is None:
        parser.error('--compare-random-init needs --checkpoint')
    return args


def config_img_size(cfg: Config):
    """The config's ``img_size``, else its train dataset's ``img_size``."""
    if cfg.get('img_size') is not None:
        return int(cfg.img_size)
    dataset = cfg.get('train_dataloader', {}).get('dataset', {})
    while isinstance(dataset, dict) and 'dataset' in dataset:  # wrappers
        dataset = dataset['dataset']
    if isinstance(dataset, dict) and dataset.get('img_size') is not None:
        return int(dataset['img_size'])
    return None


def build_model(cfg: Config, seed: int):
    """The config's model, initialised as training would (seeded)."""
    set_random_seed(seed)
    model = build_model_from_config(cfg)
    if not hasattr(model, 'backbone') or not hasattr(model,
                                                     'data_preprocessor'):
        raise TypeError(f'{type(model).__name__} has no backbone / '
                        'data_preprocessor to evaluate')
    return model.eval()


def load_backbone(model, checkpoint: str, trusted=None) -> dict:
    """Load the backbone of ``checkpoint`` into ``model.backbone``.

    The checkpoint is read without running code from it and loaded with
    mmmim's checked loader: the ``backbone.*`` keys of an algorithm
    checkpoint, or a state dict saved from the backbone alone. Missing,
    unexpected and shape-mismatched keys are reported; a checkpoint of which
    nothing loads raises.
    """
    state = unwrap_state_dict(load_checkpoint_file(checkpoint,
                                                   trusted=trusted))
    prefix = 'backbone.' if any(k.startswith('backbone.')
                                for k in state) else None
    try:
        report = load_pretrained_checked(model.backbone, state, prefix,
                                         min_loaded_fraction=0.,
                                         logger='silent')
    except RuntimeError as e:
        raise RuntimeError(
            f'no backbone parameter of the model was found in {checkpoint}: '
            f'is it a checkpoint of this config? ({e})') from None
    total = len(model.backbone.state_dict())
    mismatched = [k for k, _, _ in report.mismatched]
    print(f'Loaded {len(report.loaded)}/{total} backbone tensors '
          f'from {checkpoint}')
    for name, keys in (('missing', report.missing),
                       ('unexpected', report.unexpected),
                       ('shape mismatch (not loaded)', mismatched)):
        if keys:
            print(f'  {name} backbone keys ({len(keys)}): '
                  + ', '.join(keys[:20]) + (' ...' if len(keys) > 20 else ''))
    return dict(loaded=len(report.loaded), total=total,
                missing=report.missing, unexpected=report.unexpected,
                shape_mismatch=mismatched)


def main(argv=None) -> dict:
    args = parse_args(argv)
    # Keep mmengine's per-parameter init report out of the output.
    MMLogger.get_instance(f'evaluate_representation_{time.time_ns()}',
                         log_level='WARNING')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    img_size = args.img_size or config_img_size(cfg)
    if img_size is None:
        raise SystemExit('cannot find img_size in the config: pass '
                         '--img-size')

    train_set, test_set = fashion_mnist_splits(
        img_size=img_size, num_train=args.num_train, num_test=args.num_test,
        data_root=args.data_root)
    linear_cfg = dict(epochs=args.linear_epochs)

    def evaluate(model):
        start = time.time()
        train = extract_features(model, train_set, args.batch_size)
        test = extract_features(model, test_set, args.batch_size)
        res = evaluate_features(*train, *test, k=args.k,
                                temperature=args.temperature,
                                linear_probe=not args.no_linear,
                                linear_cfg=linear_cfg, seed=args.seed)
        res['seconds'] = round(time.time() - start, 1)
        return res

    def line(res):
        text = f"kNN top-1: {res['knn_top1']:.2f}"
        if 'linear_top1' in res:
            text += f"  linear probe top-1: {res['linear_top1']:.2f}"
        return text

    results = dict(config=args.config, img_size=img_size,
                   num_train=len(train_set), num_test=len(test_set), k=args.k,
                   seed=args.seed)
    with torch.no_grad():
        if args.checkpoint:
            model = build_model(cfg, args.seed)
            results['load_report'] = load_backbone(
                model, args.checkpoint, args.trust_checkpoint)
            results['checkpoint'] = evaluate(model)
            print(f'checkpoint   {line(results["checkpoint"])}')
        if args.random_init or args.compare_random_init:
            model = build_model(cfg, args.seed)
            results['random_init'] = evaluate(model)
            print(f'random init  {line(results["random_init"])}')
        if args.checkpoint and 'random_init' in results:
            ck, rnd = results['checkpoint'], results['random_init']
            diff = {key: ck[key] - rnd[key]
                    for key in ('knn_top1', 'linear_top1') if key in ck}
            results['difference'] = diff
            text = f"difference   kNN top-1: {diff['knn_top1']:+.2f}"
            if 'linear_top1' in diff:
                text += f"  linear probe top-1: {diff['linear_top1']:+.2f}"
            print(text)
    if args.out_json:
        mmengine.dump(results, args.out_json, indent=2)
    return results


if __name__ == '__main__':
    main()
