"""Swin fine-tuning from SimMIM pre-training, window-size change included.

SimMIM pre-trains Swin at 192 px with window 6 (mmpretrain's
``SimMIMSwinTransformer``) and fine-tunes at 224 px with window 7. The
relative position bias tables then grow from (2*6-1)^2 to (2*7-1)^2 rows;
the reference (``utils.remap_pretrained_keys_swin``) resamples them with a
bicubic spline on geometrically spaced source offsets. mmpretrain's
``SwinTransformer`` does the same through ``scipy.interpolate.interp2d``,
which current scipy no longer provides; :func:`resize_rel_pos_bias_geometric`
computes the identical spline with ``RectBivariateSpline``.
"""
import numpy as np
import torch
from mmengine.logging import print_log

from mmpretrain.models import SwinTransformer
from mmpretrain.registry import MODELS
from mmmim.utils.checkpoint import load_checkpoint_file, unwrap_state_dict
from ..utils.checkpoint_loading import load_pretrained_checked


def resize_rel_pos_bias_geometric(table: torch.Tensor,
                                  dst_size: int) -> torch.Tensor:
    """Resize a ((2w-1)^2, heads) relative position bias table to
    (dst_size^2, heads) as the SimMIM / BEiT references do.

    The source offsets are placed at geometrically growing distances
    ``1, 1 + q, 1 + q + q^2, ...`` with ``q`` chosen (bisection) so that the
    largest reaches ``dst_size // 2``; the destination offsets are the
    integers; each head's table is interpolated by a bicubic spline through
    the source values (``interp2d(kind='cubic')`` of the reference, which
    fits the same ``regrid_smth`` spline).
    """
    from scipy.interpolate import RectBivariateSpline
    src_size = int(round(table.shape[0]**.5))
    if src_size * src_size != table.shape[0]:
        raise ValueError(f'table of {table.shape[0]} rows is not square')
    if src_size == dst_size:
        return table

    def geometric_progression(a, r, n):
        return a * (1.0 - r**n) / (1.0 - r)

    left, right = 1.01, 1.5
    while right - left > 1e-6:
        q = (left + right) / 2.0
        if geometric_progression(1, q, src_size // 2) > dst_size // 2:
            right = q
        else:
            left = q
    dis, cur = [], 1
    for i in range(src_size // 2):
        dis.append(cur)
        cur += q**(i + 1)
    x = np.array([-d for d in reversed(dis)] + [0] + dis)
    t = dst_size // 2.0
    dx = np.arange(-t, t + 0.1, 1.0)
    columns = []
    for head in range(table.shape[1]):
        z = table[:, head].view(src_size, src_size).float().numpy()
        # interp2d(x, y, z)(dx, dy) == RectBivariateSpline(x, y, z.T)(dx, dy).T
        spline = RectBivariateSpline(x, x, z.T, kx=3, ky=3, s=0)
        columns.append(torch.from_numpy(
            np.ascontiguousarray(spline(dx, dx).T)).float().reshape(-1, 1))
    return torch.cat(columns, dim=1).to(table.dtype)


@MODELS.register_module()
class FinetuneSwinTransformer(SwinTransformer):
    """mmpretrain's ``SwinTransformer`` that loads SimMIM Swin pre-training.

    Loading a state dict (``init_cfg=dict(type='Pretrained', checkpoint=...,
    prefix='backbone.')``, ``load_from`` or ``load_state_dict``): relative
    position bias tables of another window size are resized with the
    reference's geometric bicubic interpolation
    (:func:`resize_rel_pos_bias_geometric`) and their stale
    ``relative_position_index`` buffers dropped; pre-training's
    ``mask_token`` is dropped (it has no use here). Everything else is
    mmpretrain's ``SwinTransformer``.
    """

    #: pre-training keys that fine-tuning does not use
    PRETRAIN_ONLY_KEYS = ('mask_token', )

    def prepare_state_dict(self, state_dict: dict, prefix: str = '') -> list:
        """Adapt ``state_dict`` (keys with ``prefix``) in place; returns what
        was changed, for the log."""
        changed = []
        own = self.state_dict()
        for key in self.PRETRAIN_ONLY_KEYS:
            if prefix + key in state_dict and key not in own:
                del state_dict[prefix + key]
                changed.append(f'{key}: dropped (pre-training only)')
        for key, value in own.items():
            if not key.endswith('relative_position_bias_table'):
                continue
            ckpt = state_dict.get(prefix + key)
            if ckpt is None or ckpt.shape == value.shape:
                continue
            if ckpt.shape[1] != value.shape[1]:
                continue  # different heads: let loading report it
            dst = int(round(value.shape[0]**.5))
            state_dict[prefix + key] = resize_rel_pos_bias_geometric(ckpt, dst)
            index = prefix + key.replace('bias_table', 'index')
            state_dict.pop(index, None)
            changed.append(f'{key}: {tuple(ckpt.shape)} -> '
                           f'{tuple(value.shape)}')
        return changed

    def _prepare_relative_position_bias_table(self, state_dict, prefix, *args,
                                              **kwargs):
        # replaces mmpretrain's pre-hook (scipy interp2d) of the same name
        changed = self.prepare_state_dict(state_dict, prefix)
        if changed:
            print_log('FinetuneSwinTransformer: adapted ' + '; '.join(changed),
                      logger='current')

    def init_weights(self) -> None:
        init_cfg = self.init_cfg
        if not (isinstance(init_cfg, dict)
                and init_cfg.get('type') == 'Pretrained'):
            return super().init_weights()
        # adapt the checkpoint first, then load it through mmmim's checked
        # loader (every missing / unexpected key is reported)
        state = unwrap_state_dict(load_checkpoint_file(
            init_cfg['checkpoint'], init_cfg.get('map_location', 'cpu')))
        prefix = init_cfg.get('prefix') or ''
        state = {k[len(prefix):]: v for k, v in state.items()
                 if k.startswith(prefix)}
        if not state:
            raise KeyError(f'FinetuneSwinTransformer: no key of '
                           f"{init_cfg['checkpoint']} starts with {prefix!r}")
        self.init_cfg = None
        try:
            super().init_weights()  # the random init of what is not loaded
        finally:
            self.init_cfg = init_cfg
        changed = self.prepare_state_dict(state)
        if changed:
            print_log('FinetuneSwinTransformer: adapted ' + '; '.join(changed),
                      logger='current')
        load_pretrained_checked(self, state)
