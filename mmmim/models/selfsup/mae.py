"""MAE: encode the visible patches, reconstruct the masked ones (He et al.,
Masked Autoencoders Are Scalable Vision Learners, CVPR 2022;
docs/mae_simmim.md)."""
from typing import Dict, List, Optional

import torch

from mmpretrain.registry import MODELS
from .base import MIMSelfSupervisor


def patches_to_image(head, pred: torch.Tensor,
                     inputs: torch.Tensor) -> torch.Tensor:
    """Predicted patches (B, L, p*p*C) of an ``MAEPretrainHead``-style head
    as an image (B, C, H, W); with ``norm_pix`` each patch is de-normalised
    with the true patch's mean and (unbiased) variance."""
    if hasattr(head, 'to_image'):  # MIMTargetHead
        return head.to_image(pred, inputs)
    if head.norm_pix:
        target = head.patchify(inputs)
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        pred = pred * (var + 1.e-6)**.5 + mean
    return head.unpatchify(pred)


def check_decoder_fits(model) -> None:
    """Fail at build time, not deep in the first step, when an MAE-style
    decoder / pixel head does not fit the backbone."""
    backbone, neck = model.backbone, model.neck
    patch = backbone.patch_embed.projection.kernel_size[0]
    problems = []
    if neck.num_patches != backbone.num_patches:
        problems.append(f'decoder num_patches={neck.num_patches} but the '
                        f'backbone has {backbone.num_patches} patches')
    if neck.decoder_embed.in_features != backbone.embed_dims:
        problems.append(f'decoder embed_dim={neck.decoder_embed.in_features} '
                        f'but the backbone is {backbone.embed_dims} wide')
    head_patch = getattr(model.head, 'patch_size', patch)
    if head_patch != patch:
        problems.append(f'head patch_size={head_patch} but the backbone '
                        f'patch_size is {patch}')
    if hasattr(model.head, 'values_per_patch'):  # MIMTargetHead
        need = model.head.values_per_patch
        what = f'its {type(model.head.target).__name__} needs {need}'
    else:
        in_chans = getattr(model.head, 'in_channels', 3)
        need = patch * patch * in_chans
        what = f'pixels need {patch}*{patch}*{in_chans}={need}'
    if neck.decoder_pred.out_features != need:
        problems.append(f'decoder predicts {neck.decoder_pred.out_features} '
                        f'values per patch, {what}')
    if problems:
        raise ValueError(f'{type(model).__name__}: ' + '; '.join(problems))


@MODELS.register_module()
class MAEPretrainer(MIMSelfSupervisor):
    """Masked autoencoder pre-training.

    Composes a ``MaskedViT`` backbone, an ``MAEDecoder`` neck and
    mmpretrain's ``MAEPretrainHead`` (masked per-patch MSE, ``norm_pix`` with
    unbiased variance; the reference) or a ``MIMTargetHead`` (other targets:
    PCA coefficients, dVAE tokens, colours; loss on all patches). The mask
    comes from the pipeline when present (see :class:`MIMSelfSupervisor`).

    With ``mask_mode='drop'`` (MAE) the encoder sees the visible patches
    only and the decoder appends its mask tokens; with ``'replace'`` (the
    paper's "encoder w/ [M]" ablation) the encoder substitutes its mask
    token for the masked patches and encodes all of them, and the decoder
    receives every position (it adds no mask token).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        check_decoder_fits(self)

    def predict_patches(self, inputs: torch.Tensor, mask: torch.Tensor,
                        num_masked: Optional[int] = None) -> torch.Tensor:
        """Decoder output for every patch, (B, L, p*p*C), in target space."""
        out = self.backbone(inputs, mask, num_masked)
        if isinstance(out, tuple):
            latent, ids_restore = out
        else:  # mask tokens in the encoder: every position, raster order
            latent = out
            ids_restore = torch.arange(
                mask.shape[1], device=out.device).expand(out.shape[0], -1)
        return self.neck(latent, ids_restore)

    def reconstruct(self, inputs: torch.Tensor,
                    mask: torch.Tensor) -> torch.Tensor:
        return patches_to_image(self.head, self.predict_patches(inputs, mask),
                                inputs)

    def loss(self, inputs: torch.Tensor, data_samples: List,
             **kwargs) -> Dict[str, torch.Tensor]:
        mask, num_masked = self.get_mask_and_count(inputs, data_samples)
        pred = self.predict_patches(inputs, mask, num_masked)
        loss = self.head.loss(pred, inputs, mask.to(pred.dtype))
        return dict(loss=loss)
