"""HOG histograms per patch (MaskFeat-style targets): HPM's ``target='hog'``
and ``projects/hpm_hog``."""
import torch

from mmpretrain.models.selfsup.maskfeat import HOGGenerator
from mmpretrain.registry import MODELS


@MODELS.register_module()
class PatchHOGGenerator(HOGGenerator):
    """mmpretrain's ``HOGGenerator`` with per-patch output for any grid.

    The parent's output reshape assumes a 14 x 14 patch grid; this one groups
    the (3, nbins, H/pool, W/pool) histograms into the model's patches:
    (B, L, 3 * nbins * (patch_size / pool)^2).

    Args:
        patch_size (int): Model patch size (a multiple of ``pool``).
        Other arguments are those of ``HOGGenerator``.
    """

    def __init__(self, patch_size: int = 16, nbins: int = 9, pool: int = 8,
                 gaussian_window: int = 16) -> None:
        super().__init__(nbins=nbins, pool=pool,
                         gaussian_window=gaussian_window)
        if patch_size % pool:
            raise ValueError(f'patch_size {patch_size} is not a multiple of '
                             f'pool {pool}')
        self.patch_size = patch_size

    def _reshape(self, hog_feat: torch.Tensor) -> torch.Tensor:
        # (B, 3, nbins, h, w) -> (B, L, 3 * nbins * u * u), u cells per patch
        u = self.patch_size // self.pool
        hog_feat = hog_feat.flatten(1, 2).permute(0, 2, 3, 1)
        hog_feat = hog_feat.unfold(1, u, u).unfold(2, u, u)
        return hog_feat.flatten(1, 2).flatten(2)
