"""iTPN pixel pre-training: HiViT + pyramid neck + pixel decoder."""
from typing import Dict, List, Optional

import torch
from mmpretrain.models import BaseSelfSupervisor
from mmpretrain.registry import MODELS

from ..utils import (masks_from_data_samples, random_patch_mask,
                     visible_first_order)


def _image(inputs):
    # SelfSupDataPreprocessor gives a list of views for multi-view pipelines
    return inputs[0] if isinstance(inputs, (list, tuple)) else inputs


@MODELS.register_module()
class iTPNPretrainer(BaseSelfSupervisor):
    """iTPN with pixel targets (reference ``models_itpn`` pre-training).

    The patch mask comes from ``data_samples[i].mask`` when the pipeline gives
    one, else MAE random masking with ``mask_ratio``. The backbone drops the
    masked patches before its stem, the pyramid neck (``self.neck``, so that
    its checkpoint keys start with ``neck.``) builds three levels over the
    visible patches, the decoder fuses them and predicts pixels, and the head
    computes the masked normalised-pixel MSE.

    Args:
        backbone (dict): ``iTPNBackbone`` config (``mask_mode='drop'``).
        neck (dict): ``iTPNPyramidNeck`` config (``out_mode='tokens'``).
        decoder (dict): ``iTPNPixelDecoder`` config.
        head (dict): ``iTPNPixelHead`` config.
        mask_ratio (float): Ratio of masked patches without a pipeline mask.
        data_preprocessor (dict, optional): Data preprocessor config.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 decoder: dict,
                 head: dict,
                 mask_ratio: float = 0.75,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(backbone=backbone, neck=neck, head=head,
                         data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.decoder = MODELS.build(decoder)
        if not 0 < mask_ratio < 1:
            raise ValueError(f'mask_ratio must be in (0, 1), got {mask_ratio}')
        self.mask_ratio = mask_ratio

    def get_mask(self, img: torch.Tensor, data_samples) -> torch.Tensor:
        """(B, L) bool mask: the pipeline's if given, else random."""
        h, w = (img.shape[2] // self.backbone.patch_size,
                img.shape[3] // self.backbone.patch_size)
        mask = masks_from_data_samples(data_samples)
        if mask is None:
            return random_patch_mask(img.shape[0], h * w, self.mask_ratio,
                                     device=img.device)
        if mask.shape[1] != h * w:
            raise ValueError(f'the pipeline mask has {mask.shape[1]} patches, '
                             f'the image has {h * w}')
        return mask.to(img.device)

    def extract_feat(self, inputs: torch.Tensor):
        """NCHW maps of the unmasked backbone."""
        return self.backbone(_image(inputs))

    def predict_pixels(self, img: torch.Tensor, mask: torch.Tensor):
        """Decoder output (B, L, p*p*C) for an image and a patch mask."""
        feats = self.backbone(img, mask)
        levels = self.neck(feats)
        _, ids_restore, _ = visible_first_order(mask)
        return self.decoder(levels, ids_restore)

    def loss(self, inputs, data_samples: Optional[List] = None,
             **kwargs) -> Dict[str, torch.Tensor]:
        """Masked normalised-pixel loss, ``dict(loss=...)``."""
        img = _image(inputs)
        mask = self.get_mask(img, data_samples)
        pred = self.predict_pixels(img, mask)
        return dict(loss=self.head.loss(pred, img, mask))
