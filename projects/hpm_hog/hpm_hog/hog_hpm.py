"""A new MIM variant built from registered mmmim / mmpretrain parts.

Hard patches are chosen without a learned loss predictor: a patch's
difficulty is its texture (pixel variance), the easy-to-hard schedule and the
vectorised mask come from mmmim's ``HPMTarget`` (used without a teacher), and
the decoder regresses the HOG features of the masked patches (mmmim's
``PatchHOGGenerator``, MaskFeat-style targets).
"""
from typing import Dict, List, Optional

import torch
from mmengine.model import BaseModule

from mmpretrain.registry import MODELS
from mmmim.models.selfsup.base import MIMSelfSupervisor
from mmmim.models.utils import masks_from_data_samples


@MODELS.register_module()
class HOGReconstructionHead(BaseModule):
    """HOG targets per patch and their masked MSE.

    Args:
        patch_size (int): Model patch size.
        nbins, pool, gaussian_window: ``PatchHOGGenerator`` arguments; the
            target width is ``3 * nbins * (patch_size // pool)**2``.
    """

    def __init__(self, patch_size: int = 16, nbins: int = 9, pool: int = 8,
                 gaussian_window: int = 16,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.hog = MODELS.build(
            dict(type='PatchHOGGenerator', patch_size=patch_size,
                 nbins=nbins, pool=pool, gaussian_window=gaussian_window))

    @torch.no_grad()
    def construct_target(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, L, D) HOG histograms."""
        return self.hog(inputs)

    def loss(self, pred: torch.Tensor, target: torch.Tensor,
             mask: torch.Tensor) -> torch.Tensor:
        per_patch = ((pred.float() - target.float())**2).mean(-1)
        mask = mask.to(per_patch.dtype)
        return (per_patch * mask).sum() / mask.sum()


@MODELS.register_module()
class HOGHardPatchPretrainer(MIMSelfSupervisor):
    """MAE-style encoder / decoder; masks mined by texture; HOG targets.

    Args:
        backbone, neck: ``MaskedViT`` (``mask_mode='drop'``) and
            ``MAEDecoder`` with ``predict_feature_dim`` = the HOG width.
        head: ``HOGReconstructionHead``.
        target_generator: ``HPMTarget``; only its schedule (K from the
            runner's epoch / iteration) and mask generation are used.
        mask_ratio: r.
    """

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 target_generator: dict, mask_ratio: float = 0.75,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        target_generator = dict(target_generator)
        target_generator.setdefault('mask_ratio', mask_ratio)
        super().__init__(backbone=backbone, neck=neck, head=head,
                         target_generator=target_generator,
                         data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg, mask_ratio=mask_ratio)

    def patch_difficulty(self, inputs: torch.Tensor) -> torch.Tensor:
        """Texture score per patch: pixel variance, (B, L)."""
        p = self.backbone.patch_embed.projection.stride[0]
        B, C, H, W = inputs.shape
        x = inputs.reshape(B, C, H // p, p, W // p, p)
        x = x.permute(0, 2, 4, 1, 3, 5).reshape(B, (H // p) * (W // p), -1)
        return x.var(dim=-1)

    def get_mask(self, inputs: torch.Tensor,
                 data_samples: Optional[List]) -> torch.Tensor:
        if masks_from_data_samples(data_samples) is not None:
            return super().get_mask(inputs, data_samples)
        return self.target_generator.generate_mask(
            self.patch_difficulty(inputs))

    def loss(self, inputs: torch.Tensor, data_samples: List,
             **kwargs) -> Dict[str, torch.Tensor]:
        mask = self.get_mask(inputs, data_samples)
        latent, ids_restore = self.backbone(inputs, mask)
        pred = self.neck(latent, ids_restore)
        target = self.head.construct_target(inputs)
        return dict(loss_hog=self.head.loss(pred, target, mask))
