"""HPM: MAE plus a loss predictor whose EMA teacher mines hard patches (Wang et
al., Hard Patches Mining for Masked Image Modeling, CVPR 2023; docs/hpm.md).

Parts, each registered in mmpretrain's ``MODELS`` (files under
``mmmim/models/``):

- backbone: ``MaskedViT`` (backbones/masked_vit.py);
- neck: ``MAEDecoder`` (necks/mae_decoder.py);
- head: mmpretrain's ``MAEPretrainHead`` (pixel target);
- loss_predictor: ``LossPredictorHead`` (heads/loss_predictor_head.py), with
  ``HPMRelativeLoss`` / ``HPMStandardizedMSELoss`` (losses/hpm_losses.py);
- target_generator: ``HPMTarget`` (target_generators/hpm_target.py), the EMA
  teacher and its mask, updated by ``HPMTeacherHook`` (mmmim/engine/hooks);
- ``PatchHOGGenerator`` (target_generators/patch_hog.py) for
  ``target='hog'``.
"""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn

from mmpretrain.registry import MODELS
from ..losses.hpm_losses import patch_cosine_distance, patch_mse
from ..utils import masks_from_data_samples
from .base import MIMSelfSupervisor


@MODELS.register_module()
class HPMPretrainer(MIMSelfSupervisor):
    """Hard patches mining pre-training.

    Composes a ``MaskedViT`` backbone (``mask_mode='drop'``), an
    ``MAEDecoder`` neck (reconstruction decoder and the shared token
    embedding), a ``LossPredictorHead`` and an ``HPMTarget`` target generator
    (the EMA teacher of backbone + neck + loss predictor, updated by
    ``HPMTeacherHook``).

    Each step: the teacher predicts a loss for every patch of the fully
    visible image and builds the easy-to-hard mask (an explicit pipeline mask
    in ``data_samples[i].mask`` overrides it); the student encodes the visible
    patches; both decoders read the same embedded tokens;
    ``loss_rec`` = masked mean of the per-patch reconstruction losses,
    ``loss_pred`` = loss-prediction loss on the detached per-patch losses.
    mmengine sums both (they are logged separately).

    Args:
        backbone, neck (dict): ``MaskedViT`` and ``MAEDecoder`` configs. For
            ``target='hog'`` / ``'teacher'`` set the neck's
            ``predict_feature_dim`` to the target width.
        head (dict, optional): ``MAEPretrainHead`` for ``target='pixel'``
            (patchify and ``norm_pix``; the reference trains without).
        loss_predictor (dict): ``LossPredictorHead`` config.
        target_generator (dict): ``HPMTarget`` config; its ``mask_ratio``
            defaults to this algorithm's.
        target (str): Reconstruction target: ``'pixel'``, ``'hog'``
            (``PatchHOGGenerator`` on the normalised image, per-patch MSE) or
            ``'teacher'`` (the EMA encoder's patch tokens on the full image;
            loss = sum over channels of the squared difference of the
            l2-normalised prediction and target).
        hog_cfg (dict, optional): Extra ``PatchHOGGenerator`` arguments
            (``patch_size`` is taken from the backbone).
        mask_ratio (float): r. Defaults to 0.75.
        data_preprocessor, init_cfg: as ``BaseSelfSupervisor``.
        **kwargs: ``nonfinite_loss``, ``compile`` (``MIMSelfSupervisor``).
    """

    TARGETS = ('pixel', 'hog', 'teacher')
    compile_modules = ('backbone', 'neck', 'head', 'loss_predictor')

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 loss_predictor: dict,
                 target_generator: dict,
                 head: Optional[dict] = None,
                 target: str = 'pixel',
                 hog_cfg: Optional[dict] = None,
                 mask_ratio: float = 0.75,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        if target not in self.TARGETS:
            raise ValueError(f'target must be one of {self.TARGETS}, '
                             f'got {target!r}')
        if target == 'pixel' and head is None:
            raise ValueError("target='pixel' needs a head (MAEPretrainHead)")
        if isinstance(target_generator, dict):
            target_generator = dict(target_generator)
            target_generator.setdefault('mask_ratio', mask_ratio)
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            target_generator=target_generator,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
            mask_ratio=mask_ratio,
            **kwargs)
        self.loss_predictor = (
            loss_predictor if isinstance(loss_predictor, nn.Module) else
            MODELS.build(loss_predictor))
        self.target = target
        if target == 'hog':
            hog_cfg = dict(hog_cfg or {})
            hog_cfg.setdefault('patch_size',
                               self.backbone.patch_embed.projection.stride[0])
            self.hog = MODELS.build(dict(type='PatchHOGGenerator', **hog_cfg))
        if target == 'teacher' and \
                self.target_generator.predictor == 'student':
            raise ValueError("target='teacher' needs the EMA teacher's "
                             "predictions (target_generator.predictor="
                             "'teacher')")
        self.target_generator.init_teacher(self.student_parts())

    def student_parts(self) -> Dict[str, nn.Module]:
        """The modules the teacher averages (the whole student)."""
        return dict(
            backbone=self.backbone,
            neck=self.neck,
            loss_predictor=self.loss_predictor)

    def init_weights(self) -> None:
        super().init_weights()
        # the teacher starts as an exact copy of the initialised student
        self.target_generator.copy_from(self.student_parts())

    @torch.no_grad()
    def update_teacher(self, momentum: Optional[float] = None) -> float:
        """EMA step of the teacher; call after every optimiser step."""
        return self.target_generator.update(self.student_parts(), momentum)

    def construct_target(self, inputs: torch.Tensor,
                         teacher_feats: Optional[torch.Tensor]
                         ) -> torch.Tensor:
        """Per-patch reconstruction target, (B, L, D)."""
        if self.target == 'pixel':
            return self.head.construct_target(inputs)
        if self.target == 'hog':
            return self.hog(inputs)
        return teacher_feats

    def patch_losses(self, pred: torch.Tensor,
                     target: torch.Tensor) -> torch.Tensor:
        """Per-patch reconstruction losses, (B, L)."""
        if self.target == 'teacher':
            return patch_cosine_distance(pred, target)
        return patch_mse(pred, target)

    def get_mask(self, inputs: torch.Tensor, data_samples: Optional[List],
                 teacher_scores: Optional[torch.Tensor] = None
                 ) -> torch.Tensor:
        """(B, L) bool mask: the pipeline's when every sample has one,
        otherwise the teacher's easy-to-hard mask (from ``teacher_scores`` or
        a fresh teacher pass)."""
        return self.get_mask_and_count(inputs, data_samples,
                                       teacher_scores)[0]

    def get_mask_and_count(self, inputs: torch.Tensor,
                           data_samples: Optional[List],
                           teacher_scores: Optional[torch.Tensor] = None
                           ) -> Tuple[torch.Tensor, Optional[int]]:
        """:meth:`get_mask` and its masked patches per image (known on the
        host: the teacher's mask masks ``M`` in every image)."""
        if masks_from_data_samples(data_samples) is not None:
            return super().get_mask_and_count(inputs, data_samples)
        if teacher_scores is None:
            teacher_scores, _ = self.rank_patches(inputs)
        return (self.target_generator.generate_mask(teacher_scores),
                self.target_generator.num_masked(teacher_scores.shape[1]))

    def rank_patches(self, inputs: torch.Tensor):
        """Predicted losses (B, L) of the full image, and the encoder's
        patch tokens, from the teacher (reference) or, with
        ``target_generator.predictor='student'``, from the student."""
        if self.target_generator.predictor == 'student':
            return self.target_generator(inputs, self.student_parts())
        return self.target_generator(inputs)

    def predict(self, inputs: torch.Tensor, mask: torch.Tensor,
                num_masked: Optional[int] = None):
        """Student outputs under ``mask``: reconstruction (B, L, D) and
        predicted losses (B, L)."""
        latent, ids_restore = self.backbone(inputs, mask, num_masked)
        tokens = self.neck.embed_tokens(latent, ids_restore)
        # the loss predictor reads the same tokens, not detached (reference)
        return self.neck.decode(tokens), self.loss_predictor(tokens)

    @torch.no_grad()
    def reconstruct(self, inputs: torch.Tensor,
                    mask: torch.Tensor) -> torch.Tensor:
        """Pixel reconstruction (B, C, H, W) for the pictures (pixel target
        only; de-normalised per patch with ``norm_pix``)."""
        if self.target != 'pixel':
            raise NotImplementedError(
                f"target={self.target!r} does not reconstruct pixels")
        pred, _ = self.predict(inputs, mask)
        if self.head.norm_pix:
            target = self.head.patchify(inputs)
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            pred = pred * (var + 1.e-6)**.5 + mean
        return self.head.unpatchify(pred)

    def loss(self, inputs: torch.Tensor, data_samples: List,
             **kwargs) -> Dict[str, torch.Tensor]:
        explicit = masks_from_data_samples(data_samples) is not None
        teacher_scores = teacher_feats = None
        if not explicit or self.target == 'teacher':
            teacher_scores, teacher_feats = self.rank_patches(inputs)
        mask, num_masked = self.get_mask_and_count(inputs, data_samples,
                                                   teacher_scores)

        pred, pred_losses = self.predict(inputs, mask, num_masked)
        target = self.construct_target(inputs, teacher_feats)
        per_patch = self.patch_losses(pred, target)
        maskf = mask.to(per_patch.dtype)
        loss_rec = (per_patch * maskf).sum() / maskf.sum()
        loss_pred = self.loss_predictor.loss(pred_losses, per_patch, mask,
                                             num_masked)
        return dict(loss_rec=loss_rec, loss_pred=loss_pred)
