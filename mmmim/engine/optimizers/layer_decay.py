"""Layer-wise learning-rate decay for ViT / HiViT backbones, in mmpretrain,
mmdet and mmseg.

mmdet's and mmseg's own layer-decay constructors only recognise their own
backbone classes, and mmpretrain's needs the *model* to have
``get_layer_depth`` (classifiers do, detectors and segmentors do not). This
constructor asks the backbone (``model.backbone``) for each parameter's layer
id, so it works for any model type that has a ``backbone`` attribute.

Rule (BEiT / MAE fine-tuning code; docs/transfer.md section 4): with ``depth`` blocks, layer id 0
is the patch embedding / cls token / position embedding, block ``i`` has id
``i + 1``, everything else (final norms, fc_norm, necks, heads) has id
``depth + 1``; the lr scale is ``d ** (depth + 1 - id)``.

``layer_id_rule='flat'`` is the rule of the BEiT-derived constructors that the
iTPN detection / segmentation code ships: ``blocks.<i>`` gets ``i + 1`` over
the backbone's flat block list (HiViT's patch merges counted as entries),
only the names in ``first_layer_names`` get 0, everything else the top id,
and the ids are not clamped (blocks past ``num_layers`` get lr scales > 1).
"""
from collections import defaultdict
from typing import Callable, List, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.utils.dl_utils import is_norm

from mmpretrain.registry import OPTIM_WRAPPER_CONSTRUCTORS

# Parameters that never get weight decay (besides 1-D parameters and biases).
DEFAULT_NO_DECAY_NAMES = ('pos_embed', 'cls_token', 'mask_token',
                          'absolute_pos_embed', 'relative_position_bias_table')


def _block_or_top_id(param_name: str, num_layers: int) -> int:
    """``i + 1`` for ``blocks.<i>.*`` / ``layers.<i>.*``, else the top id."""
    parts = param_name.split('.')
    if parts[0] in ('layers', 'blocks') and len(parts) > 1 \
            and parts[1].isdigit():
        return int(parts[1]) + 1
    return num_layers - 1


def default_layer_depth(param_name: str, num_blocks: int) -> Tuple[int, int]:
    """Layer id of a backbone parameter following the ViT / BEiT rule.

    Used when the backbone has no ``get_layer_depth``. Blocks are found as
    ``layers.<i>.*`` (mmpretrain ViT) or ``blocks.<i>.*`` (timm / HiViT).

    Args:
        param_name (str): parameter name relative to the backbone.
        num_blocks (int): number of blocks (depth).

    Returns:
        tuple: (layer id, depth + 2) as mmpretrain's ``get_layer_depth``.
    """
    num_layers = num_blocks + 2
    if param_name in ('cls_token', 'pos_embed', 'absolute_pos_embed',
                      'mask_token') or param_name.startswith('patch_embed'):
        return 0, num_layers
    return _block_or_top_id(param_name, num_layers), num_layers


FLAT_FIRST_LAYER_NAMES = ('patch_embed', 'pos_embed', 'cls_token',
                          'mask_token')


def flat_layer_depth(param_name: str, num_blocks: int,
                     first_layer_names: Sequence[str] = FLAT_FIRST_LAYER_NAMES
                     ) -> Tuple[int, int]:
    """Layer id under the BEiT constructor rule over a flat block list.

    ``blocks.<i>.*`` / ``layers.<i>.*`` get ``i + 1`` with ``i`` the index in
    the backbone's block list (for HiViT that list holds the patch merges
    too, so the ids run past ``num_blocks``); names starting with one of
    ``first_layer_names`` get 0; everything else gets ``num_blocks + 1``.
    Unlike ``default_layer_depth`` the ids are not clamped.

    Args:
        param_name (str): parameter name relative to the backbone.
        num_blocks (int): the ``num_layers`` the reference config gives.
        first_layer_names (Sequence[str]): name prefixes with id 0.

    Returns:
        tuple: (layer id, num_blocks + 2).
    """
    num_layers = num_blocks + 2
    if param_name.startswith(tuple(first_layer_names)):
        return 0, num_layers
    return _block_or_top_id(param_name, num_layers), num_layers


def _num_blocks(backbone: nn.Module) -> int:
    for attr in ('layers', 'blocks'):
        blocks = getattr(backbone, attr, None)
        if isinstance(blocks, nn.ModuleList):
            return len(blocks)
    if hasattr(backbone, 'num_layers'):
        return int(backbone.num_layers)
    raise AttributeError(f'cannot find the blocks of {type(backbone)}; give '
                         'paramwise_cfg.num_layers')


def _register_everywhere(cls):
    """Register ``cls`` in mmpretrain's, and if installed mmdet's and
    mmseg's, optimizer-wrapper-constructor registries (same name)."""
    OPTIM_WRAPPER_CONSTRUCTORS.register_module(module=cls)
    for mod in ('mmdet.registry', 'mmseg.registry'):
        try:
            registry = __import__(mod, fromlist=['OPTIM_WRAPPER_CONSTRUCTORS'])
        except Exception:  # library not installed (e.g. mmcv-lite only)
            continue
        registry.OPTIM_WRAPPER_CONSTRUCTORS.register_module(module=cls)
    return cls


@_register_everywhere
class MIMLayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """AdamW-style param groups with layer-wise lr decay for ViT / HiViT.

    ``paramwise_cfg`` keys:

    - ``layer_decay_rate`` (float): d. Defaults to 1 (no decay).
    - ``backbone_name`` (str): attribute holding the backbone; parameter
      names starting with ``<backbone_name>.`` are backbone parameters.
      Defaults to ``'backbone'``.
    - ``num_layers`` (int, optional): the depth; by default taken from the
      backbone's ``get_layer_depth`` (``num_layers - 2``), else from the
      length of its ``layers`` / ``blocks``.
    - ``rescale_depth`` (int, optional): express the decay as if the model
      had this many blocks: the exponent ``depth + 1 - id`` is multiplied
      by ``(rescale_depth + 1) / (depth + 1)``, i.e. ``d_eff =
      d ** ((rescale_depth + 1) / (depth + 1))``. iTPN fine-tuning uses 30
      blocks rescaled to 12 (``d_eff = d ** (13 / 31)``).
    - ``use_backbone_layer_depth`` (bool): use the backbone's
      ``get_layer_depth`` when it has one. Defaults to True.
    - ``layer_id_rule`` (str): ``'backbone'`` (default: the backbone's
      ``get_layer_depth``, else the rule of ``default_layer_depth``) or
      ``'flat'`` (``flat_layer_depth``: the reference iTPN detection and
      segmentation constructors' rule over the flat block list).
    - ``first_layer_names`` (tuple[str]): with ``layer_id_rule='flat'``, the
      backbone parameter names (prefixes) that get layer id 0. Defaults to
      patch embedding, position table and cls / mask tokens.
    - ``no_decay_names`` (tuple[str]): parameter-name parts exempt from
      weight decay (matched against the last name component). Defaults to
      pos/cls/mask tokens and relative position tables.
    - ``decay_1d`` (bool): decay 1-D parameters and biases too. Defaults to
      False (the reference: no decay for norms, biases, gains).
    - ``norm_decay_mult`` (float, optional): weight-decay multiplier for the
      parameters of normalisation layers (found by module type), applied
      after the rules above; with ``decay_1d=True`` and 0 this is
      detectron2's rule (ViTDet: norms not decayed, biases decayed).
    - ``custom_keys`` (dict): ``{substring: dict(decay_mult=..,
      lr_mult=..)}`` applied on top of the rules above.

    Each param group carries ``lr_scale``, ``layer_id`` and
    ``param_names`` (for logging and tests).
    """

    def add_params(self,
                   params: List[dict],
                   module: nn.Module,
                   prefix: str = '',
                   **kwargs) -> None:
        if is_model_wrapper(module):
            module = module.module
        cfg = self.paramwise_cfg
        decay = float(cfg.get('layer_decay_rate', 1.0))
        bb_name = cfg.get('backbone_name', 'backbone')
        backbone = getattr(module, bb_name, None)
        get_depth = self._depth_fn(backbone)
        no_decay = tuple(cfg.get('no_decay_names', DEFAULT_NO_DECAY_NAMES))
        decay_1d = cfg.get('decay_1d', False)
        custom_keys = cfg.get('custom_keys', {})
        sorted_keys = sorted(sorted(custom_keys), key=len, reverse=True)
        base_wd = self.base_wd if self.base_wd is not None else 0.
        norm_decay_mult = cfg.get('norm_decay_mult')
        norm_params = set()
        if norm_decay_mult is not None:
            for mod_name, mod in module.named_modules():
                if is_norm(mod):
                    norm_params.update(
                        f'{mod_name}.{n}' if mod_name else n
                        for n, _ in mod.named_parameters(recurse=False))

        groups = defaultdict(list)
        bb_prefix = bb_name + '.'
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            if backbone is not None and name.startswith(bb_prefix):
                layer_id, num_layers = get_depth(name[len(bb_prefix):])
            else:
                layer_id, num_layers = get_depth(None)
            exponent = num_layers - 1 - layer_id
            if cfg.get('rescale_depth') is not None:
                exponent *= (cfg['rescale_depth'] + 1) / (num_layers - 1)
            scale = decay**exponent
            last = name.rsplit('.', 1)[-1]
            exempt = (not decay_1d and (param.ndim == 1 or last == 'bias')) \
                or last in no_decay
            wd = 0. if exempt else base_wd
            if name in norm_params:
                wd = wd * norm_decay_mult
            lr_mult = 1.
            key = next((k for k in sorted_keys if k in name), None)
            if key is not None:
                wd = wd * custom_keys[key].get('decay_mult', 1.)
                lr_mult = custom_keys[key].get('lr_mult', 1.)
            groups[(layer_id, scale * lr_mult, wd)].append((name, param))

        summary = []
        for (layer_id, scale, wd), items in sorted(groups.items()):
            params.append(
                dict(
                    params=[p for _, p in items],
                    lr=self.base_lr * scale,
                    weight_decay=wd,
                    lr_scale=scale,
                    layer_id=layer_id,
                    param_names=[n for n, _ in items]))
            summary.append(f'  layer {layer_id:3d}  lr_scale={scale:.4g}  '
                           f'wd={wd:.3g}  {len(items)} params, e.g. '
                           f'{items[0][0]}')
        print_log(
            f'layer-wise lr decay {decay} over the {bb_name}:\n' +
            '\n'.join(summary),
            logger='current')

    def _depth_fn(self, backbone: Optional[nn.Module]) -> Callable:
        """Return ``f(name_in_backbone or None) -> (layer_id, depth + 2)``."""
        cfg = self.paramwise_cfg
        rule = cfg.get('layer_id_rule', 'backbone')
        if rule not in ('backbone', 'flat'):
            raise ValueError("paramwise_cfg.layer_id_rule must be 'backbone' "
                             f"or 'flat', got {rule!r}")
        num_layers = None
        if cfg.get('num_layers') is not None:
            num_layers = int(cfg['num_layers']) + 2
        if rule == 'flat':
            if num_layers is None:
                raise ValueError("layer_id_rule='flat' needs "
                                 'paramwise_cfg.num_layers (the reference '
                                 "config's value)")
            first = tuple(cfg.get('first_layer_names',
                                  FLAT_FIRST_LAYER_NAMES))

            def get_flat_depth(name: Optional[str]) -> Tuple[int, int]:
                if name is None:
                    return num_layers - 1, num_layers
                return flat_layer_depth(name, num_layers - 2, first)

            return get_flat_depth
        use_own = (backbone is not None
                   and cfg.get('use_backbone_layer_depth', True)
                   and hasattr(backbone, 'get_layer_depth'))
        if num_layers is None:
            if use_own:
                _, num_layers = backbone.get_layer_depth('')
            elif backbone is not None:
                num_layers = _num_blocks(backbone) + 2
            else:
                raise ValueError('the model has no backbone; give '
                                 'paramwise_cfg.num_layers')

        def get_depth(name: Optional[str]) -> Tuple[int, int]:
            if name is None:
                return num_layers - 1, num_layers
            if use_own:
                layer_id, _ = backbone.get_layer_depth(name)
            else:
                layer_id, _ = default_layer_depth(name, num_layers - 2)
            return min(layer_id, num_layers - 1), num_layers

        return get_depth
