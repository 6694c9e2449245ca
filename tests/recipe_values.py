"""The values that decide a recipe, read from a resolved config and from the
model and optimiser it builds (full size, on the meta device).

``tests/test_recipes.py`` compares them with the ``mmmim`` column of
``docs/recipes.md``; ``python tests/recipe_values.py CONFIG`` prints them.
"""
import copy
import glob
import math
import os.path as osp
import sys
from functools import lru_cache

import torch
from mmengine import Config
from mmengine.registry import DefaultScope

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
NUM_GPUS = 8  # every mmmim config writes its batch per GPU for 8 GPUs

# a CLIP ViT-B/16 visual tower without its checkpoint (meta builds of the
# configs that name no teacher architecture)
CLIP_B16 = dict(input_resolution=224, patch_size=16, width=768, layers=12,
                heads=12, output_dim=512)


def all_configs():
    """Every runnable config under configs/ (relative paths, sorted).

    configs/ablations/ holds grids for tools/analysis/ablate.py (a base
    config plus option sets), not configs to train.
    """
    paths = glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    rel = [osp.relpath(p, ROOT) for p in paths]
    return sorted(p for p in rel
                  if not {'_base_', 'ablations'} & set(p.split(osp.sep)))


def _cache_metafile_reads():
    """mmengine parses every metafile of a package for each ``pkg::`` base
    (about 2 s each); the files do not change, so read each one once."""
    import mmengine.config.utils as cfg_utils
    if getattr(cfg_utils.load, '_recipe_cache', None) is not None:
        return
    cache, load = {}, cfg_utils.load

    def cached_load(path, *args, **kwargs):
        if isinstance(path, str) and '.mim' in path:
            if path not in cache:
                cache[path] = load(path, *args, **kwargs)
            return copy.deepcopy(cache[path])
        return load(path, *args, **kwargs)

    cached_load._recipe_cache = cache
    cfg_utils.load = cached_load


@lru_cache(maxsize=None)
def load_config(path: str) -> Config:
    _cache_metafile_reads()
    return Config.fromfile(osp.join(ROOT, path))


def _registry(scope):
    return __import__(f'{scope}.registry', fromlist=['MODELS'])


@lru_cache(maxsize=None)
def build_meta(path: str):
    """(cfg, model, param groups) at full size on the meta device (on the
    CPU for the few models that read tensor values while they are built)."""
    cfg = copy.deepcopy(load_config(path))
    scope = cfg.get('default_scope', 'mmpretrain')
    model_cfg = copy.deepcopy(cfg.model)
    if 'data_preprocessor' in cfg and 'data_preprocessor' not in model_cfg:
        model_cfg.data_preprocessor = cfg.data_preprocessor  # as the Runner
    teacher = model_cfg.get('target_generator', {})
    if teacher.get('type') == 'iTPNCLIPTeacher':
        # no file needed: the config's tower (CLIP-L/14), else CLIP-B/16
        teacher.update(checkpoint=None, arch=teacher.get('arch', CLIP_B16))
    with DefaultScope.overwrite_default_scope(scope):
        try:
            with torch.device('meta'):
                model = _registry(scope).MODELS.build(model_cfg)
        except RuntimeError as e:
            # mmpretrain's SwinTransformer reads tensor values while it is
            # built (drop-path rates via .item()): build it on the CPU
            if 'meta' not in str(e):
                raise
            model = _registry(scope).MODELS.build(copy.deepcopy(model_cfg))
        groups = param_groups(cfg, model, scope) \
            if 'optim_wrapper' in cfg else None
    return cfg, model, groups


def param_groups(cfg, model, scope='mmpretrain'):
    """The optimiser's param groups (lr, weight_decay, ...) as the config's
    optimiser-wrapper constructor makes them, without building the optimiser
    (torch checks every group against all others: quadratic in the number of
    groups, seconds for a ViT-B)."""
    ow = copy.deepcopy(cfg.optim_wrapper)
    opt = ow.optimizer
    constructor = _registry(scope).OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(type=ow.get('constructor', 'DefaultOptimWrapperConstructor'),
             optim_wrapper_cfg=ow, paramwise_cfg=ow.get('paramwise_cfg')))
    defaults = dict(lr=opt.lr, weight_decay=opt.get('weight_decay', 0.))
    if not constructor.paramwise_cfg:
        params = [dict(params=[p for p in model.parameters()
                               if p.requires_grad])]
    else:
        params = []
        constructor.add_params(params, model)
    return [{**defaults, **g} for g in params]


# ----------------------------------------------------------------- helpers
def _g(x):
    """Compact float."""
    return f'{x:g}'


def _named_groups(model, groups):
    """parameter name -> its param group."""
    by_id = {id(p): g for g in groups for p in g['params']}
    return {n: by_id[id(p)] for n, p in model.named_parameters()
            if id(p) in by_id}


def _backbone(cfg):
    bb = cfg.model.get('backbone', {})
    return bb


def _pipeline(cfg):
    return cfg.train_dataloader.dataset.get('pipeline', [])


# ----------------------------------------------------------------- values
def total_batch(cfg, model, groups):
    per_gpu = cfg.train_dataloader.batch_size
    total = per_gpu * NUM_GPUS
    text = f'{total} ({NUM_GPUS} x {per_gpu})'
    base = cfg.get('auto_scale_lr', {}).get('base_batch_size')
    if base is not None and base != total:
        text += f' [auto_scale_lr {base}]'
    return text


def learning_rate(cfg, model, groups):
    return _g(cfg.optim_wrapper.optimizer.lr)


def optimizer(cfg, model, groups):
    opt = cfg.optim_wrapper.optimizer
    if opt.type in ('AdamW', 'Adam'):
        betas = tuple(opt.get('betas', (0.9, 0.999)))
        text = f'{opt.type} ({_g(betas[0])}, {_g(betas[1])})'
        if opt.get('eps', 1e-8) != 1e-8:
            text += f' eps {_g(opt.eps)}'
        return text
    text = f"{opt.type} momentum {_g(opt.get('momentum', 0))}"
    excluded = sorted({n.rsplit('.', 1)[-1]
                       for n, g in _named_groups(model, groups).items()
                       if g.get('lars_exclude')})
    if excluded:
        text += ', no LARS scaling: ' + ', '.join(excluded)
    return text


def weight_decay(cfg, model, groups):
    return _g(cfg.optim_wrapper.optimizer.get('weight_decay', 0))


# parameters whose decay a reference decides by name
_NOTABLE = ('cls_token', 'mask_token', 'stem_mask_token', 'pos_embed',
            'relative_position_bias_table', 'rel_pos_h', 'rel_pos_w')


def no_decay(cfg, model, groups):
    """Which trainable parameters get no weight decay."""
    groups = _named_groups(model, groups)
    if not groups or cfg.optim_wrapper.optimizer.get('weight_decay', 0) == 0:
        return 'n/a (no weight decay)'
    norm_params = set()
    from mmengine.utils.dl_utils import is_norm
    for mname, mod in model.named_modules():
        if is_norm(mod):
            norm_params.update(f'{mname}.{n}' if mname else n
                               for n, _ in mod.named_parameters(recurse=False))
    exempt = {n for n, g in groups.items() if g['weight_decay'] == 0}
    one_d = {n for n in groups if model.get_parameter(n).ndim <= 1}
    biases = {n for n in one_d if n.endswith('bias') and n not in norm_params}
    exempt_kinds, decayed_kinds = [], []
    if one_d <= exempt:
        exempt_kinds.append('1-D (norms, biases, gains)')
    else:
        norms = norm_params & set(groups)
        for label, members in (('norms', norms), ('biases', biases),
                               ('other 1-D', one_d - norms - biases)):
            if not members:
                continue
            if members <= exempt:
                exempt_kinds.append(label)
            elif not members & exempt:
                decayed_kinds.append(label)
            else:
                exempt_kinds.append(f'some {label}')
    exempt_kinds += sorted({n.rsplit('.', 1)[-1] for n in exempt - one_d})
    decayed_kinds += sorted({n.rsplit('.', 1)[-1]
                             for n in set(groups) - exempt
                             if n.rsplit('.', 1)[-1] in _NOTABLE})
    text = 'exempt: ' + ', '.join(exempt_kinds)
    if decayed_kinds:
        text += '; decayed: ' + ', '.join(decayed_kinds)
    return text


def _end(s, cfg):
    if 'end' in s:
        return s['end']
    tc = cfg.train_cfg
    return tc.get('max_epochs') if s.get('by_epoch', True) else \
        tc.get('max_iters')


def schedule(cfg, model, groups):
    parts = []
    for s in cfg.param_scheduler:
        unit = 'ep' if s.get('by_epoch', True) else 'it'
        b, e = s.get('begin', 0), _end(s, cfg)
        if s.type == 'LinearWarmupLR':
            reached = f'{e} {unit} - 1 step (linspace)' if s.get('linspace') \
                else f'{e} {unit}'
            parts.append(f'warm-up x{_g(s.start_factor)} -> x1 at {reached}')
        elif s.type == 'LinearLR':
            parts.append(f'linear x{_g(s.start_factor)} -> '
                         f"x{_g(s.get('end_factor', 1.))} {b}-{e} {unit}")
        elif s.type in ('CosineAnnealingLR', 'LayerDecayCosineAnnealingLR'):
            t_max = s.get('T_max') or e - b
            floor = _g(s.get('eta_min', 0))
            if s.type == 'LayerDecayCosineAnnealingLR':
                floor += ' x lr_scale'
            text = f"cosine to {floor} {b}-{e} {unit}"
            if t_max != e - b:
                text += f' (T_max {t_max})'
            parts.append(text)
        elif s.type == 'MultiStepLR':
            steps = ','.join(str(m + b) for m in s.milestones)
            parts.append(f"x{_g(s.get('gamma', 0.1))} at {steps} {unit}")
        elif s.type == 'PolyLR':
            parts.append(f"poly {_g(s.get('power', 1.))} to "
                         f"{_g(s.get('eta_min', 0))} {b}-{e} {unit}")
        else:
            parts.append(s.type)
    return '; '.join(parts)


def length(cfg, model, groups):
    tc = cfg.train_cfg
    if tc.get('max_epochs') is not None and \
            tc.get('type', 'EpochBasedTrainLoop') != 'IterBasedTrainLoop':
        return f'{tc.max_epochs} epochs'
    return f'{tc.max_iters} iterations'


def grad_clip(cfg, model, groups):
    clip = cfg.optim_wrapper.get('clip_grad')
    return 'none' if not clip else _g(clip.max_norm)


def precision(cfg, model, groups):
    return 'fp16 (dynamic loss scale)' \
        if cfg.optim_wrapper.get('type') == 'AmpOptimWrapper' else 'fp32'


def _crop_text(t):
    lo, hi = t.get('crop_ratio_range', (0.08, 1.0))
    ratio = t.get('aspect_ratio_range', (3. / 4., 4. / 3.))
    text = (f"{t.type}({t.scale}, {_g(lo)}-{_g(hi)}, "
            f"{t.get('interpolation', 'bilinear')}")
    if tuple(ratio) != (3. / 4., 4. / 3.):
        text += f', ratio {_g(ratio[0])}-{_g(ratio[1])}'
    return text + ')'


def _transform_text(t):
    kind = t.type
    if kind in ('RandomResizedCrop', 'SingleDrawRandomResizedCrop'):
        return _crop_text(t)
    if kind == 'RandomFlip':
        return f"flip {_g(t.get('prob', 0.5))}"
    if kind == 'SIMColorJitter':
        return (f"ColorJitter({_g(t.get('brightness', 0))}, "
                f"{_g(t.get('contrast', 0))}, {_g(t.get('saturation', 0))}, "
                f"{_g(t.get('hue', 0))})")
    if kind == 'RandAugment':
        return (f'RandAugment m{t.magnitude_level} n{t.num_policies} '
                f"std {_g(t.get('magnitude_std', 0))}")
    if kind == 'RandomErasing':
        return f"erasing {_g(t.erase_prob)} {t.get('mode', 'const')}"
    if kind == 'SIMTwoViews':
        lo, hi = t.get('crop_ratio_range', (0.08, 1.0))
        return f'two views: flip, crop({t.size}, {_g(lo)}-{_g(hi)}), colour'
    if kind == 'RandomChoiceResize':
        shorts = sorted(min(s) for s in t.scales)
        longs = {max(s) for s in t.scales}
        return (f'resize short side {shorts[0]}-{shorts[-1]} '
                f'({len(shorts)} sizes), long <= {max(longs)}')
    if kind in ('Resize', 'RandomResize'):
        scale = t.get('scale')
        text = f'{kind}({scale}'
        if t.get('ratio_range'):
            text += f', {_g(t.ratio_range[0])}-{_g(t.ratio_range[1])}'
        return text + ')'
    if kind == 'RandomCrop':
        return f'RandomCrop({tuple(t.crop_size)})'
    if kind == 'RandomChoice':
        options = [' > '.join(_transform_text(x) for x in opt)
                   for opt in t.transforms]
        return 'one of [' + ' or '.join(options) + ']'
    if kind == 'PhotoMetricDistortion':
        return 'photometric distortion'
    return None


_SKIP = ('LoadImageFromFile', 'LoadImageChecked', 'LoadAnnotations',
         'PackInputs', 'PackDetInputs', 'PackSegInputs', 'RandomMaskGenerator',
         'BlockwiseMaskGenerator', 'FilterAnnotations', 'Pad')


def augmentation(cfg, model, groups):
    parts = [_transform_text(t) for t in _pipeline(cfg)
             if t.type not in _SKIP]
    parts = [p for p in parts if p]
    augments = cfg.model.get('train_cfg', {}) or {}
    for a in augments.get('augments', []) or []:
        parts.append(f'{a.type} {_g(a.alpha)}')
    head_loss = cfg.model.get('head', {}).get('loss', {})
    if head_loss.get('type') == 'LabelSmoothLoss':
        parts.append(f'label smoothing {_g(head_loss.label_smooth_val)}')
    norm = cfg.get('data_preprocessor', cfg.model.get('data_preprocessor'))
    if norm and norm.get('mean') is not None:
        parts.append('mean ' + '/'.join(_g(m) for m in norm.mean) +
                     ', std ' + '/'.join(_g(s) for s in norm.std))
    return ', '.join(parts)


def mask(cfg, model, groups):
    for t in _pipeline(cfg):
        if t.type == 'RandomMaskGenerator':
            text = f'random {_g(t.mask_ratio)}'
            if t.get('mask_patch_size'):
                text += f' of {t.mask_patch_size}-px blocks'
            return text
        if t.type == 'BlockwiseMaskGenerator':
            exact = 'exact' if t.get('exact_count', False) else 'at most'
            return (f'block-wise {exact} {t.num_masking_patches}, '
                    f"min block {t.get('min_num_patches', 4)}")
    if cfg.model.get('type') == 'HPMPretrainer':
        tg = cfg.model.target_generator
        return (f'teacher-mined, {_g(cfg.model.get("mask_ratio", 0.75))}, '
                f"hard share 0 -> {_g(tg.get('hard_ratio', 0.5))}")
    if 'mask_ratio' in cfg.model:
        return f'random {_g(cfg.model.mask_ratio)}'
    return 'none'


def drop_path(cfg, model, groups):
    return _g(_backbone(cfg).get('drop_path_rate', 0.))


def input_size(cfg, model, groups):
    bb = _backbone(cfg)
    size = bb.get('img_size')
    crop = cfg.get('crop_size')
    text = f'{size}'
    if crop:
        text = f'crop {tuple(crop)}, backbone tables {size}'
    if bb.get('pos_embed_size'):
        text += f', abs table {bb.pos_embed_size}x{bb.pos_embed_size}'
    return text


def _probe_params(model, groups):
    """Representative backbone parameters and one outside the backbone."""
    names = [n for n in groups if n.startswith('backbone.')]
    blocks = sorted({int(n.split('.')[2]) for n in names
                     if n.split('.')[1] in ('layers', 'blocks')})
    probes = []
    for prefix in ('backbone.patch_embed', 'backbone.pos_embed',
                   'backbone.cls_token'):
        hit = [n for n in names if n.startswith(prefix)]
        if hit:
            probes.append((prefix.split('.')[1], hit[0]))
    kind = 'layers' if any(n.startswith('backbone.layers.')
                           for n in names) else 'blocks'
    if blocks:
        for b in (blocks[0], blocks[-1]):
            hit = [n for n in names if n.startswith(f'backbone.{kind}.{b}.')]
            probes.append((f'{kind}.{b}', hit[0]))
    others = [n for n in groups if not n.startswith('backbone.')]
    if others:
        probes.append((others[-1].split('.')[0], others[-1]))
    return probes


def layer_decay(cfg, model, groups):
    pw = cfg.optim_wrapper.get('paramwise_cfg', {}) or {}
    rate = pw.get('layer_decay_rate')
    if cfg.optim_wrapper.get('constructor') != \
            'MIMLayerDecayOptimWrapperConstructor' or rate is None:
        return 'none'
    groups = _named_groups(model, groups)
    parts = []
    for label, name in _probe_params(model, groups):
        scale = groups[name]['lr_scale']
        exp = math.log(scale) / math.log(rate) if scale != 1 else 0
        parts.append(f'{label} d^{exp:.4g}')
    return f'd = {rate:.4g}: ' + ', '.join(parts)


def momentum(cfg, model, groups):
    m = cfg.model
    if m.get('type') == 'HPMPretrainer':
        tg = m.target_generator
        unit = 'iterations' if tg.get('by_iter') else 'epochs'
        return (f'EMA teacher {_g(tg.base_momentum)} -> '
                f'{_g(tg.final_momentum)} over {tg.momentum_warmup} {unit}')
    if m.get('type') == 'SIMPretrainer':
        return f'{_g(m.base_momentum)} -> 1 (cosine)'
    if m.get('type') == 'iTPNMFMPretrainer':
        return f'EMA teacher, 1 - {_g(m.target_generator.momentum)}'
    return 'n/a'


def teacher(cfg, model, groups):
    """The CLIP teacher as built: its tower, the resolution it sees and the
    width of the targets the student predicts."""
    tg = getattr(model, 'target_generator', None)
    if tg is None or not hasattr(tg, 'visual'):
        return 'n/a'
    a = tg.arch
    size = tg.input_size or a['input_resolution']
    grid = size // a['patch_size']
    return (f"CLIP ViT width {a['width']}, {a['layers']} layers, patch "
            f"{a['patch_size']}, at {size} px ({grid}x{grid} tokens, "
            f"position table {tg.visual.positional_embedding.shape[0] - 1}); "
            f'targets {model.head.lm_head.out_features}')


def backbone(cfg, model, groups):
    bb = _backbone(cfg)
    kind = bb.get('type', '').split('.')[-1]
    parts = [f"{kind} {bb.get('arch', '')}".strip()]
    if bb.get('use_rel_pos_bias') or bb.get('use_shared_rel_pos_bias'):
        parts.append('shared rel pos' if bb.get('use_shared_rel_pos_bias')
                     else 'rel pos')
    if bb.get('use_rel_pos'):
        parts.append(f"window {bb.get('window_size')} + rel pos")
    ls = bb.get('layer_scale_init_value')
    if ls:
        parts.append(f'layer scale {_g(ls)}')
    if 'pos_embed_type' in bb:
        parts.append('pos ' + ('frozen' if bb.pos_embed_type == 'sincos'
                               else 'trained'))
    norm = bb.get('norm_cfg')
    if norm and norm.get('eps') is not None:
        parts.append(f'LN eps {_g(norm.eps)}')
    neck = cfg.model.get('neck')
    if isinstance(neck, dict) and neck.get('fpn_depth') is not None:
        parts.append(f'pyramid depth {neck.fpn_depth}')
    return ', '.join(parts)


def heads(cfg, model, groups):
    m = cfg.model
    if 'roi_head' in m:
        rpn = m.rpn_head
        bbox, mk = m.roi_head.bbox_head, m.roi_head.mask_head

        def norm(h):
            n = h.get('norm_cfg')
            return n.type.split('.')[-1] if n else 'no norm'

        def box(h):
            # the Portable* heads are mmdet's with device-portable kernels
            kind = h.type.replace('Portable', '').replace('BBoxHead', '')
            return (f"{kind} fc {h.get('fc_out_channels', 1024)} {norm(h)} "
                    f"{h.loss_bbox.type}")
        if isinstance(bbox, list):  # Cascade R-CNN: one box head per stage
            rcnn = m.train_cfg.rcnn
            stages = (
                f"cascade {len(bbox)} stages, loss weights "
                f"{'/'.join(_g(w) for w in m.roi_head.stage_loss_weights)}"
                f", IoU {'/'.join(_g(r.assigner.pos_iou_thr) for r in rcnn)}"
                f", {m.train_cfg.rpn_proposal.max_per_img} proposals")
            stds = '/'.join(_g(h.bbox_coder.target_stds[0]) for h in bbox)
            return (f"RPN {rpn.get('num_convs', 1)} conv "
                    f"{rpn.loss_bbox.type}; {stages}; box {box(bbox[0])} "
                    f"(stds {stds}); mask {norm(mk)}")
        return (f"RPN {rpn.get('num_convs', 1)} conv; box {box(bbox)}; "
                f"mask {norm(mk)}")
    if 'decode_head' in m:
        d = m.decode_head
        return (f'{d.type} in {list(d.in_channels)} ch {d.channels}; aux '
                f"{m.auxiliary_head.type} in_index "
                f"{m.auxiliary_head.get('in_index', 2)}")
    return 'n/a'


VALUES = {
    'total batch': total_batch,
    'lr': learning_rate,
    'optimizer': optimizer,
    'weight decay': weight_decay,
    'no weight decay': no_decay,
    'lr schedule': schedule,
    'length': length,
    'grad clip': grad_clip,
    'precision': precision,
    'augmentation': augmentation,
    'mask': mask,
    'drop path': drop_path,
    'layer decay': layer_decay,
    'momentum / EMA': momentum,
    'input size': input_size,
    'backbone': backbone,
    'teacher': teacher,
    'heads': heads,
}


def recipe_values(path: str) -> dict:
    cfg, model, groups = build_meta(path)
    return {key: fn(cfg, model, groups) for key, fn in VALUES.items()}


if __name__ == '__main__':
    import mmmim  # noqa: F401
    from mmengine.logging import MMLogger
    MMLogger.get_instance('mmengine').setLevel('WARNING')
    for path in sys.argv[1:]:
        print(f'== {path}')
        for key, value in recipe_values(path).items():
            print(f'| {key} | {value} |')
