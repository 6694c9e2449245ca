"""iTPN pre-training: a HiViT backbone and a feature pyramid trained together
(Tian et al., *Integrally Pre-Trained Transformer Pyramid Networks*, CVPR
2023; docs/itpn.md).

Three variants share :class:`iTPNBase` (backbone, pyramid neck, mask):

- :class:`iTPNPretrainer`: pixel targets through a decoder (reference
  ``itpn_pixel``);
- :class:`iTPNCLIPPretrainer`: masked feature modeling with a frozen CLIP
  teacher (reference ``itpn_clip``);
- :class:`iTPNMFMPretrainer`: masked feature modeling with a moving-average
  teacher (the paper's description).

Parts, each registered in mmpretrain's ``MODELS`` (files under
``mmmim/models/``):

- backbone: ``iTPNBackbone`` (backbones/itpn_hivit.py);
- neck: ``iTPNPyramidNeck`` (necks/itpn_pyramid.py);
- decoder of the pixel variant: ``iTPNPixelDecoder`` (necks/itpn_decoder.py);
- head: ``iTPNPixelHead``, ``iTPNCLIPHead``, ``iTPNMFMHead``
  (heads/itpn_heads.py);
- target_generator: ``iTPNCLIPTeacher``, ``iTPNEMATeacher``
  (target_generators/itpn_teachers.py).

Layers they share (the HiViT block with a relative bias, the per-level
embedding, token-layout conversions) are in ``models/utils/itpn_layers.py``.
"""
from typing import Dict, List, Optional, Tuple

import torch

from mmpretrain.registry import MODELS
from ..utils import visible_first_order
from .base import MIMSelfSupervisor
from .mae import patches_to_image


def _image(inputs):
    # SelfSupDataPreprocessor gives a list of views for multi-view pipelines
    return inputs[0] if isinstance(inputs, (list, tuple)) else inputs


class iTPNBase(MIMSelfSupervisor):
    """What every iTPN variant has: an ``iTPNBackbone``, an
    ``iTPNPyramidNeck`` (``self.neck``, so that its checkpoint keys start
    with ``neck.`` and load downstream; None only in the pixel variant's
    no-pyramid ablation), a head and the patch mask.

    The mask comes from ``data_samples[i].mask`` when the pipeline gives one,
    else MAE random masking with ``mask_ratio``, on the patch grid of the
    image at hand. Keyword arguments a variant does not name
    (``data_preprocessor``, ``init_cfg``, ``nonfinite_loss``, ``compile``) go
    to ``MIMSelfSupervisor``.
    """

    def get_mask_and_count(
            self, img: torch.Tensor,
            data_samples) -> Tuple[torch.Tensor, Optional[int]]:
        """(B, L) bool mask (the pipeline's if given, else random) on the
        image's patch grid, and its masked patches per image."""
        h, w = (img.shape[2] // self.backbone.patch_size,
                img.shape[3] // self.backbone.patch_size)
        return self._mask_and_count(img, data_samples, h * w)

    def extract_feat(self, inputs: torch.Tensor):
        """NCHW maps of the unmasked backbone."""
        return self.backbone(_image(inputs))

    def ema_feature_targets(self, img: torch.Tensor) -> tuple:
        """The ``iTPNEMATeacher``'s features of the unmasked image at strides
        16, 8, 4 (the order of the pyramid levels); in training the teacher
        takes its EMA step first."""
        if self.training:
            self.target_generator.update(self.backbone)
        return self.target_generator(img)[::-1]


@MODELS.register_module()
class iTPNPretrainer(iTPNBase):
    """iTPN with pixel targets (reference ``itpn_pixel`` pre-training).

    The backbone drops the masked patches before its stem, the pyramid neck
    builds three levels over the visible patches, the decoder fuses them and
    predicts pixels, and the head computes the masked normalised-pixel MSE.

    The paper's ablations (the reference is the default):

    - ``neck=None``: no pyramid in pre-training; the decoder reads the main
      stage only (``iTPNPixelDecoder(num_levels=1, fpn_dim=<backbone
      width>)``): a HiViT MAE.
    - ``mfm_head`` + ``target_generator``: multi-stage supervision, the
      paper's masked feature modeling added to the pixel loss: every
      pyramid level regresses the EMA teacher's feature of the same stride
      on the masked patches (``iTPNMFMHead``, ``iTPNEMATeacher``), logged as
      ``loss_mfm``. The levels must then cover every patch, so the backbone
      hides the masked ones with a mask token at the stem
      (``mask_mode='stem_token'``) instead of dropping them; the decoder
      gets every position and adds no mask token (run the pixel-only model
      with ``'stem_token'`` too to separate the two changes).

    Args:
        backbone (dict): ``iTPNBackbone`` config (``mask_mode='drop'`` or
            ``'stem_token'``).
        neck (dict, optional): ``iTPNPyramidNeck`` config
            (``out_mode='tokens'``); None = no pyramid.
        decoder (dict): ``iTPNPixelDecoder`` config.
        head (dict): ``iTPNPixelHead`` config.
        mfm_head (dict, optional): ``iTPNMFMHead`` config.
        target_generator (dict, optional): ``iTPNEMATeacher`` config (with
            ``mfm_head``).
        mfm_weight (float): Weight of ``loss_mfm``.
        mask_ratio (float): Ratio of masked patches without a pipeline mask.
        **kwargs: ``data_preprocessor``, ``init_cfg``, ``nonfinite_loss``,
            ``compile`` (``MIMSelfSupervisor``).
    """

    compile_modules = ('backbone', 'neck', 'decoder', 'head', 'mfm_head')

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict],
                 decoder: dict,
                 head: dict,
                 mfm_head: Optional[dict] = None,
                 target_generator: Optional[dict] = None,
                 mfm_weight: float = 1.0,
                 mask_ratio: float = 0.75,
                 **kwargs):
        super().__init__(backbone=backbone, neck=neck, head=head,
                         target_generator=target_generator,
                         mask_ratio=mask_ratio, **kwargs)
        self.decoder = MODELS.build(decoder)
        self.mfm_head = None if mfm_head is None else MODELS.build(mfm_head)
        self.mfm_weight = mfm_weight
        if self.mfm_head is not None:
            if target_generator is None or not self.with_neck:
                raise ValueError('multi-stage supervision (mfm_head) needs '
                                 'the pyramid neck and an iTPNEMATeacher '
                                 'target_generator')
            if self.backbone.mask_mode != 'stem_token':
                raise ValueError("mfm_head needs every patch in the pyramid: "
                                 "use backbone mask_mode='stem_token'")
            self.target_generator.setup(self.backbone)

    def pyramid(self, img: torch.Tensor, mask: torch.Tensor,
                num_masked: Optional[int] = None):
        """Pyramid levels ``(l16, l8, l4)`` (or the main stage alone without
        the neck) of the visible patches, or of all with a stem mask
        token."""
        feats = self.backbone(img, mask, num_masked)
        return self.neck(feats) if self.with_neck else (feats[2], )

    def decode(self, levels, mask: torch.Tensor,
               num_masked: Optional[int] = None) -> torch.Tensor:
        """Decoder output (B, L, p*p*C)."""
        if self.backbone.mask_mode == 'drop':
            _, ids_restore, _ = visible_first_order(mask, num_masked)
        else:  # every position is already there, in raster order
            ids_restore = torch.arange(
                mask.shape[1], device=mask.device).expand(mask.shape[0], -1)
        return self.decoder(levels, ids_restore)

    def predict_pixels(self, img: torch.Tensor, mask: torch.Tensor,
                       num_masked: Optional[int] = None):
        """Decoder output (B, L, p*p*C) for an image and a patch mask."""
        return self.decode(self.pyramid(img, mask, num_masked), mask,
                           num_masked)

    def reconstruct(self, inputs: torch.Tensor,
                    mask: torch.Tensor) -> torch.Tensor:
        img = _image(inputs)
        return patches_to_image(self.head, self.predict_pixels(img, mask),
                                img)

    def loss(self, inputs, data_samples: Optional[List] = None,
             **kwargs) -> Dict[str, torch.Tensor]:
        """Masked normalised-pixel loss, ``dict(loss=...)`` (and
        ``loss_mfm`` with ``mfm_head``)."""
        img = _image(inputs)
        mask, num_masked = self.get_mask_and_count(img, data_samples)
        levels = self.pyramid(img, mask, num_masked)
        pred = self.decode(levels, mask, num_masked)
        losses = dict(loss=self.head.loss(pred, img, mask))
        if self.mfm_head is not None:
            targets = self.ema_feature_targets(img)
            losses['loss_mfm'] = self.mfm_weight * self.mfm_head.loss(
                levels, targets, mask)
        return losses


@MODELS.register_module()
class iTPNCLIPPretrainer(iTPNBase):
    """iTPN masked feature modeling with a frozen CLIP teacher (reference).

    The mask token replaces the masked stride-16 tokens after the stem
    (backbone ``mask_mode='token'``); the pyramid runs over all patches; the
    head predicts the teacher's normalised patch features from the fused
    levels (main) and from the main stage after ``early_layers`` blocks
    (auxiliary), SmoothL1 over all tokens.

    Args:
        backbone (dict): ``iTPNBackbone`` config (``mask_mode='token'``).
        neck (dict): ``iTPNPyramidNeck`` config (``fpn_depth=1``).
        head (dict): ``iTPNCLIPHead`` config.
        target_generator (dict): ``iTPNCLIPTeacher`` config.
        early_layers (int): Main blocks before the auxiliary branch. The
            reference keeps the output of main block ``int(0.75 * depth)``
            counted from 0 (``if i == int(0.75 * self.depth)``), i.e. after
            int(0.75 * depth) + 1 = 19 blocks for base.
        aux_drop_path_from_backbone (bool): Give aux block j the backbone's
            stochastic-depth rate of main block ``early_layers - 1 + j`` (the
            reference's ``dpr_cls``; default). False leaves the head's own
            (none).
        mask_ratio (float): Random masking ratio when the pipeline gives no
            mask (the reference pipeline gives a block-wise mask of 75).
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 target_generator: dict,
                 early_layers: int = 19,
                 aux_drop_path_from_backbone: bool = True,
                 mask_ratio: float = 0.4,
                 **kwargs):
        super().__init__(backbone=backbone, neck=neck, head=head,
                         target_generator=target_generator,
                         mask_ratio=mask_ratio, **kwargs)
        if not 0 < early_layers <= self.backbone.num_main_blocks:
            raise ValueError(f'early_layers must be in [1, '
                             f'{self.backbone.num_main_blocks}]')
        self.early_layers = early_layers
        self._check_teacher_input_stats()
        if aux_drop_path_from_backbone:
            rates = self.backbone.drop_path_rates
            first = len(rates) - self.backbone.num_main_blocks \
                + early_layers - 1
            self.head.set_aux_drop_path([
                rates[min(first + j, len(rates) - 1)]
                for j in range(len(self.head.cls_pt_layers))])

    def _check_teacher_input_stats(self) -> None:
        """The teacher undoes the data preprocessor's normalisation: their
        statistics must agree (a mismatch would silently shift the CLIP
        targets)."""
        dp = self.data_preprocessor
        teacher = self.target_generator
        if not getattr(dp, '_enable_normalize', False) or not hasattr(
                teacher, 'input_mean'):
            return
        ours = (teacher.input_mean.flatten() * 255.,
                teacher.input_std.flatten() * 255.)
        theirs = (dp.mean.flatten().float(), dp.std.flatten().float())
        if any(t.is_meta for t in ours + theirs):
            return  # built on the meta device for shapes only: no values
        if not all(torch.allclose(a.cpu(), b.cpu(), atol=1e-3)
                   for a, b in zip(ours, theirs)):
            raise ValueError(
                'target_generator.input_mean/std '
                f'{[round(v, 3) for v in ours[0].tolist()]} / '
                f'{[round(v, 3) for v in ours[1].tolist()]} differ from the '
                'data preprocessor\'s mean/std '
                f'{[round(v, 3) for v in theirs[0].tolist()]} / '
                f'{[round(v, 3) for v in theirs[1].tolist()]}: set them '
                'equal (the teacher maps the normalised image back to '
                '[0, 1])')

    def loss(self, inputs, data_samples: Optional[List] = None,
             **kwargs) -> Dict[str, torch.Tensor]:
        """``dict(loss=SmoothL1(main) + SmoothL1(aux))``."""
        img = _image(inputs)
        mask = self.get_mask(img, data_samples)
        f4, f8, f16, early = self.backbone.forward_tokens(
            img, mask, mask_mode='token', hidden_after=(self.early_layers, ))
        levels = self.neck((f4, f8, f16))
        with torch.no_grad():
            target = self.target_generator(img)
        return dict(loss=self.head.loss(levels, early, target))


@MODELS.register_module()
class iTPNMFMPretrainer(iTPNBase):
    """iTPN masked feature modeling with a moving-average teacher (paper).

    The teacher is an EMA copy of the backbone run on the unmasked image; the
    student hides the masked patches (by default with a mask token in place
    of their stride-4 tokens, ``mask_mode='stem_token'``, so no stage sees
    them) and each pyramid level regresses the teacher's feature of the same
    stride (stage-3 / stage-2 / stage-1 output) on the masked patches.

    Args:
        backbone (dict): ``iTPNBackbone`` config.
        neck (dict): ``iTPNPyramidNeck`` config.
        head (dict): ``iTPNMFMHead`` config.
        target_generator (dict): ``iTPNEMATeacher`` config.
        mask_mode (str): How the student hides patches: 'stem_token'
            (default) or 'token' (mask token after the stem).
        mask_ratio (float): Random masking ratio without a pipeline mask.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 target_generator: dict,
                 mask_mode: str = 'stem_token',
                 mask_ratio: float = 0.75,
                 **kwargs):
        super().__init__(backbone=backbone, neck=neck, head=head,
                         target_generator=target_generator,
                         mask_ratio=mask_ratio, **kwargs)
        if mask_mode not in ('stem_token', 'token'):
            raise ValueError(f'unknown mask_mode {mask_mode!r}')
        self.mask_mode = mask_mode
        self.target_generator.setup(self.backbone)

    def loss(self, inputs, data_samples: Optional[List] = None,
             **kwargs) -> Dict[str, torch.Tensor]:
        """``dict(loss=sum of the per-level masked regression losses)``."""
        img = _image(inputs)
        mask = self.get_mask(img, data_samples)
        targets = self.ema_feature_targets(img)  # (t16, t8, t4)
        feats = self.backbone.forward_tokens(img, mask,
                                             mask_mode=self.mask_mode)
        levels = self.neck(feats)  # (l16, l8, l4)
        return dict(loss=self.head.loss(levels, targets, mask))
