"""SimMIM: mask tokens in, the masked patches' targets out (Xie et al.,
SimMIM: A Simple Framework for Masked Image Modeling, CVPR 2022;
docs/mae_simmim.md)."""
import inspect
from typing import Dict, List

import torch

from mmpretrain.registry import MODELS
from .base import MIMSelfSupervisor


def encoder_geometry(backbone):
    """(width, total stride) of the last output of a ViT-style or
    Swin-style backbone."""
    patch = backbone.patch_embed.projection.stride[0]
    if hasattr(backbone, 'stages'):  # Swin: a 2x merge before every stage
        stage = sorted(backbone.out_indices)[-1]
        return backbone.num_features[stage], patch * 2**stage
    return backbone.embed_dims, patch


def decoder_geometry(neck):
    """(in_channels, encoder_stride, out_channels, out_stride) of a SimMIM
    prediction head (mmmim's decoders, or mmpretrain's linear decoder)."""
    if hasattr(neck, 'encoder_stride'):
        return (neck.in_channels, neck.encoder_stride, neck.out_channels,
                neck.out_stride)
    conv, shuffle = neck.decoder[0], neck.decoder[1]
    stride = shuffle.upscale_factor
    return conv.in_channels, stride, conv.out_channels // stride**2, 1


@MODELS.register_module()
class SimMIMPretrainer(MIMSelfSupervisor):
    """SimMIM pre-training of a ViT or a Swin Transformer.

    Composes a backbone that takes ``forward(x, mask)`` and substitutes a
    mask token for the masked patches (``SimMIMViT``, ``MaskedViT`` with
    ``mask_mode='replace'``, or mmpretrain's ``SimMIMSwinTransformer``), a
    prediction head on its last feature map (the neck: mmpretrain's
    ``SimMIMLinearDecoder`` as the reference, or ``SimMIMDecoder`` /
    ``InverseSwinDecoder``) and a loss head (``SimMIMHead`` with
    ``MaskedPixelL1Loss`` as the reference, or ``MIMTargetHead`` for other
    targets and losses). The pipeline normally gives the mask
    (``RandomMaskGenerator`` with ``mask_patch_size=32``, or another
    mask generator); without one, a per-patch random mask is drawn.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        width, stride = encoder_geometry(self.backbone)
        patch = self.backbone.patch_embed.projection.stride[0]
        in_channels, neck_stride, out_channels, out_stride = \
            decoder_geometry(self.neck)
        # the loss head: MIMTargetHead says what it needs, SimMIMHead takes
        # full-resolution pixels
        need = (getattr(self.head, 'pred_channels', 3),
                getattr(self.head, 'stride', 1))
        problems = []
        if in_channels != width:
            problems.append(f'decoder in_channels={in_channels} but the '
                            f'backbone is {width} wide')
        if neck_stride != stride:
            problems.append(f'decoder encoder_stride={neck_stride} but the '
                            f'backbone stride is {stride}')
        if (out_channels, out_stride) != need:
            problems.append(f'decoder predicts {out_channels} channels at '
                            f'stride {out_stride}, the head needs {need[0]} '
                            f'at stride {need[1]}')
        if getattr(self.head, 'patch_size', patch) != patch:
            problems.append(f'head patch_size={self.head.patch_size} but the '
                            f'backbone patch_size is {patch}')
        if problems:
            raise ValueError('SimMIMPretrainer: ' + '; '.join(problems))

    def encode(self, inputs: torch.Tensor, mask) -> torch.Tensor:
        """The backbone's last output as an NCHW feature map."""
        out = self.backbone(inputs, mask)
        if isinstance(out, (tuple, list)):
            out = out[-1]
        if out.dim() == 4:  # Swin: already a map
            return out
        h, w = self.backbone.patch_resolution
        # ViT tokens: drop the cls token, tokens -> NCHW map
        return out[:, -h * w:].transpose(1, 2).reshape(out.shape[0], -1, h, w)

    def predict_pixels(self, inputs: torch.Tensor,
                       mask: torch.Tensor) -> torch.Tensor:
        """The prediction map (B, C, H', W'); with pixel targets the
        reconstructed image (B, C, H, W) in normalised pixel space."""
        return self.neck(self.encode(inputs, mask))

    def reconstruct(self, inputs: torch.Tensor,
                    mask: torch.Tensor) -> torch.Tensor:
        target = getattr(self.head, 'target', None)
        if target is not None and not (type(target).__name__ == 'PixelTarget'
                                       and target.stride == 1
                                       and not target.norm_patch_size):
            raise NotImplementedError(
                f'{type(target).__name__} targets are not pixels')
        return self.predict_pixels(inputs, mask)

    def extract_feat(self, inputs: torch.Tensor):
        # mmpretrain's SimMIMSwinTransformer requires the mask argument
        forward = inspect.signature(self.backbone.forward).parameters
        if 'mask' in forward:
            return self.backbone(inputs, mask=None)
        return self.backbone(inputs)

    def loss(self, inputs: torch.Tensor, data_samples: List,
             **kwargs) -> Dict[str, torch.Tensor]:
        mask = self.get_mask(inputs, data_samples)
        h, w = self.backbone.patch_resolution
        pred = self.predict_pixels(inputs, mask)
        loss = self.head.loss(pred, inputs,
                              mask.view(-1, h, w).to(pred.dtype))
        return dict(loss=loss)
