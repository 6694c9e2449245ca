"""Base-size iTPN pixel parity: mmmim's config model against the reference.

    # 1. the reference at base size (random init, fixed seed), with the
    #    reference's dependencies (REFENV, REFS: see make_fixtures.py):
    $REFENV/venv/bin/python tools/parity/make_fixtures.py \\
        --refs $REFS --timm-0.3.2 $REFENV/timm032 \\
        --check-base itpn_pixel --out work_dirs/parity_base
    # 2. here (mmmim's environment):
    python tools/parity/check_itpn_base.py \\
        work_dirs/parity_base/itpn_pixel_base.pt

Converts the reference state dict with ``tools/model_converters/
itpn_to_mmmim.py`` against ``configs/itpn/itpn-base_pixel_800e.py``, runs the
config's model on the same images and masks and prints the largest
difference of every stored tensor relative to the largest reference
magnitude (the predictions of **all** patches included). Exits non-zero when
one exceeds ``--tol`` (1e-4).
"""
import argparse
import importlib.util
import os.path as osp
import sys

import torch

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, ROOT)


def rel_err(actual, expected):
    return float((actual.float() - expected.float()).abs().max() /
                 expected.float().abs().max())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('fixture', help='itpn_pixel_base.pt')
    parser.add_argument('--config',
                        default=osp.join(ROOT, 'configs', 'itpn',
                                         'itpn-base_pixel_800e.py'))
    parser.add_argument('--tol', type=float, default=1e-4)
    from mmengine.config import DictAction
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='config overrides, e.g. '
                        'model.backbone.reference_pos_interp=False')
    args = parser.parse_args(argv)

    import mmmim  # noqa: F401
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample
    spec = importlib.util.spec_from_file_location(
        'itpn_to_mmmim',
        osp.join(ROOT, 'tools', 'model_converters', 'itpn_to_mmmim.py'))
    conv = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conv)

    fx = torch.load(args.fixture, map_location='cpu', weights_only=True)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = MODELS.build(cfg.model)
    state = conv.convert(
        {k: v.float() if v.is_floating_point() else v
         for k, v in fx['state_dict'].items()}, model, 'pixel')
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        sys.exit(f'load: missing {result.missing_keys}, '
                 f'unexpected {result.unexpected_keys}')
    model.eval()

    # float16-exact values stored as float16 (make_fixtures.py): back to float
    img, mask = fx['inputs']['img'].float(), fx['inputs']['mask']
    ref = fx['outputs']
    grid = model.backbone.patch_resolution
    samples = []
    for m in mask:
        s = DataSample()
        s.set_field(m.reshape(grid), 'mask')
        samples.append(s)
    with torch.no_grad():
        feats = model.backbone(img, mask)
        levels = model.neck(feats)
        pred = model.predict_pixels(img, mask)
        loss = model.loss(img, samples)['loss']
    visible = ~mask
    rows = [
        ('main stage (visible tokens)', feats[2], ref['main']),
        *[(f'pyramid stride {s}', lvl, r)
          for s, lvl, r in zip((16, 8, 4), levels, ref['pyramid'])],
        ('predictions, all patches', pred, ref['pred']),
        ('predictions, visible patches', pred[visible], ref['pred'][visible]),
        ('predictions, masked patches', pred[mask], ref['pred'][mask]),
        ('loss', loss, ref['loss']),
    ]
    meta = fx['meta']
    print(f'reference {meta["repository"]} @ {meta["commit"][:7]} '
          f'({meta["builder"]}), config {osp.relpath(args.config, ROOT)}, '
          f'{img.shape[0]} images, {int(mask[0].sum())}/{mask.shape[1]} '
          'patches masked')
    worst = 0.
    for name, a, b in rows:
        err = rel_err(a, b)
        worst = max(worst, err)
        print(f'  {name:32s} max|diff|/max|ref| = {err:.2e}')
    print(f'  loss: mmmim {loss.item():.8f}, '
          f'reference {ref["loss"].item():.8f}')
    if worst > args.tol:
        sys.exit(f'FAIL: {worst:.2e} > {args.tol:.0e}')
    print(f'OK: all within {args.tol:.0e}')


if __name__ == '__main__':
    main()
