"""SiameseDenseHead: SIM's projector, predictor and UniGrad loss."""
import copy
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmpretrain.registry import MODELS
from ..necks.sim_decoder import SIMPredictor, SIMProjector
from ..utils import CheckedLoadingMixin
from ..utils.relative_position import RelativeGeometry


@MODELS.register_module()
class SiameseDenseHead(CheckedLoadingMixin, BaseModule):
    """Projector + predictor with BatchNorm-over-tokens norms, and the loss.

    The online branch runs ``predict(project(encoder tokens), mask,
    geometry)``; the momentum branch keeps an EMA copy of ``projector``. The
    loss LayerNorms the targets (no affine, eps ``target_norm_eps``) and
    applies UniGrad (dense by default) in float32.

    Args:
        in_channels (int): Encoder width. Defaults to 768.
        embed_dims (int): Projector / predictor width. Defaults to 768.
        grid_size (int | tuple): Patch grid of the views. Defaults to 14.
        num_heads (int): Heads of the projector / predictor blocks.
            Defaults to 16.
        mlp_ratio (float): MLP ratio. Defaults to 4.
        projector_depth (int): Projector blocks. Defaults to 2.
        predictor_depth (int): Predictor blocks. Defaults to 4.
        norm_cfg (dict): Token BatchNorm config, ``dict(type='BN1d')`` (use
            ``sync_bn='torch'`` in the config under DDP) or
            ``dict(type='SyncBN')``.
        loss (dict): UniGrad config. Defaults to the dense form, lambda 0.02.
        target_norm_eps (float): Eps of the target LayerNorm. Defaults to 1e-5.
        target (str): ``'feature'`` (the momentum branch's projected view 2;
            SIM) or ``'pixel'`` (view 2's pixels, each patch normalised by
            its mean and unbiased variance as MAE's norm_pix, predicted by
            an extra ``Linear(embed_dims -> p*p*3)`` and regressed with MSE
            over all of view 2's patches; the first step of SIM's path from
            MAE).
        patch_size (int, optional): Patch size, for ``target='pixel'``.
    """

    def __init__(self,
                 in_channels: int = 768,
                 embed_dims: int = 768,
                 grid_size: Union[int, Sequence[int]] = 14,
                 num_heads: int = 16,
                 mlp_ratio: float = 4.,
                 projector_depth: int = 2,
                 predictor_depth: int = 4,
                 norm_cfg: dict = dict(type='BN1d'),
                 loss: dict = dict(type='UniGradLoss', neg_weight=0.02,
                                   mode='dense'),
                 target_norm_eps: float = 1e-5,
                 target: str = 'feature',
                 patch_size: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.projector = SIMProjector(in_channels, embed_dims, projector_depth,
                                      num_heads, mlp_ratio, norm_cfg)
        self.predictor = SIMPredictor(embed_dims, grid_size, predictor_depth,
                                      num_heads, mlp_ratio, norm_cfg)
        loss = copy.deepcopy(loss)
        loss.setdefault('_scope_', 'mmpretrain')
        self.loss_module = MODELS.build(loss)
        self.target_norm_eps = target_norm_eps
        if target not in ('feature', 'pixel'):
            raise ValueError(f"target must be 'feature' or 'pixel', got "
                             f'{target!r}')
        self.target = target
        self.patch_size = patch_size
        if target == 'pixel':
            if not patch_size:
                raise ValueError("target='pixel' needs the patch_size")
            self.pixel_pred = torch.nn.Linear(embed_dims, patch_size**2 * 3)

    def project(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N, C) encoder tokens -> (B, N, D)."""
        return self.projector(tokens)

    def predict(self, latent: torch.Tensor, mask: torch.Tensor,
                geometry: RelativeGeometry) -> torch.Tensor:
        """(B, 1 + V, D) projected view-1 tokens -> (B, L, D) predictions."""
        return self.predictor(latent, mask, geometry)

    def normalize_target(self, target: torch.Tensor) -> torch.Tensor:
        """LayerNorm without affine, float32, no gradient."""
        with torch.no_grad():
            return F.layer_norm(target.float(), target.shape[-1:],
                                eps=self.target_norm_eps)

    def pixel_target(self, view2: torch.Tensor) -> torch.Tensor:
        """View 2's patches (B, L, p*p*3), (row, col, channel) order, each
        standardised by its mean and unbiased variance (+1e-6)."""
        B, C, H, W = view2.shape
        p = self.patch_size
        x = view2.float().reshape(B, C, H // p, p, W // p, p)
        x = x.permute(0, 2, 4, 3, 5, 1).reshape(B, (H // p) * (W // p), -1)
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True)
        return (x - mean) / (var + 1.e-6)**.5

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """UniGrad between predictions and LayerNorm-ed momentum features
        (``target='feature'``), or the pixel MSE (``'pixel'``).

        Args:
            pred (Tensor): (B, L, D) predictions of view 2.
            target (Tensor): (B, L, D) momentum projector outputs of view 2
                (patch tokens only), or :meth:`pixel_target` of view 2.
        """
        if self.target == 'pixel':
            pixels = self.pixel_pred(pred).float()
            return ((pixels - target)**2).mean()
        return self.loss_module(pred.float(), self.normalize_target(target))
