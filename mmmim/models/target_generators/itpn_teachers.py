"""Teachers of iTPN masked feature modeling: frozen CLIP or EMA backbone."""
import os.path as osp
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule, ExponentialMovingAverage
from mmpretrain.models.utils.clip_generator_helper import VisionTransformer
from mmpretrain.registry import MODELS

from mmmim.utils.checkpoint import load_checkpoint_file, unwrap_state_dict
from ..backbones.itpn_hivit import resample_pos_embed_reference

# CLIP's own input normalisation, in 0-255 units
CLIP_MEAN = (0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255)
CLIP_STD = (0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255)
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def _load_clip_visual_state(path: str, trusted: Optional[bool]) -> dict:
    """The visual tower's state dict from an OpenAI-layout CLIP file.

    Accepts a full CLIP state dict (``visual.*`` keys) or the visual tower's
    own keys, either under ``state_dict``/``model``, read without running
    code from the file; OpenAI's TorchScript archive (``ViT-B-16.pt``) runs
    TorchScript code when loaded and is read only when trusted.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'CLIP teacher checkpoint not found: {path!r}. The iTPN CLIP '
            'variant needs a local CLIP ViT file (OpenAI\'s ViT-B-16.pt, or '
            'ViT-L-14.pt for the CLIP-L configs); set '
            'model.target_generator.checkpoint to its path.')
    obj = unwrap_state_dict(load_checkpoint_file(path, trusted=trusted),
                            keys=('state_dict', 'model'), revise_keys=())
    if any(k.startswith('visual.') for k in obj):
        obj = {k[len('visual.'):]: v for k, v in obj.items()
               if k.startswith('visual.')}
    if 'conv1.weight' not in obj or 'proj' not in obj:
        raise KeyError(f'{path!r} does not hold a CLIP ViT visual tower '
                       '(no conv1.weight / proj keys)')
    return {k: v.float() for k, v in obj.items()}


@MODELS.register_module()
class iTPNCLIPTeacher(BaseModule):
    """Frozen CLIP ViT: patch tokens after ln_post and proj, then a LayerNorm
    without affine (the reference iTPN CLIP target, (B, 196, 512) for B/16,
    (B, 196, 768) for L/14 at ``input_size=196``).

    The student's image (normalised with ``input_mean/std``, 0-255 units)
    is mapped back to [0, 1] and re-normalised for CLIP here, so one
    pipeline serves both.

    Reference quirk (``reference_input_scaling=True``, default): the
    reference pipeline hands its CLIP wrapper a [0, 1] image (``ToTensor``,
    itpn_clip/datasets.py:48), but the wrapper's ``ScalingLayerForClip``
    (itpn_clip/clip/create_clip.py:47) treats its input as if in [-1, 1]:
    ``u = clamp((x + 1) * 127.5, 0, 255) / 255``, so CLIP sees
    ``(x + 1) / 2``, an image squeezed into [0.5, 1], before CLIP's
    ``(u - mean) / std``. False feeds CLIP ``(x - mean) / std`` of the image
    itself.

    Teacher resolution (``input_size``): the reference feeds its teacher a
    second copy of the crop at ``--second_input_size`` (196 for CLIP-L/14, so
    that its 14 x 14 grid matches the student's 196 patches; itpn_clip/
    run_itpn_pretraining.py:165-172) and resamples CLIP's position table to
    that grid at every forward with DINO's ``(grid + 0.1) / table grid``
    bicubic scale factor (itpn_clip/clip/model.py:258-259,283-302). Here the
    student's image is resized to ``input_size`` (bicubic, antialiased,
    clamped to [0, 1]; the reference resizes the crop with Lanczos) and the
    table is resampled once, when the checkpoint is loaded, the same way
    (:func:`resample_pos_embed_reference`).

    Args:
        checkpoint (str, optional): Local path of an OpenAI-layout CLIP
            checkpoint; its architecture is read from the tensor shapes.
        trust_checkpoint (bool, optional): Unpickle it fully (needed for
            OpenAI's TorchScript ``ViT-B-16.pt``; only for a file you trust).
            Defaults to ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``.
        arch (dict, optional): ``input_resolution, patch_size, width,
            layers, heads, output_dim`` of the tower (``input_resolution`` is
            the one it was trained at). Without a checkpoint a randomly
            initialised tower of this shape is built (tests, meta-device
            builds); with one, the checkpoint must have this shape (a config
            written for CLIP-L/14 rejects a B/16 file).
        input_size (int, optional): Resolution the teacher sees (the
            reference's ``--second_input_size``); None: the student's image
            as it is, at the tower's own position table.
        input_mean, input_std (Sequence[float]): Normalisation of the input
            (0-255 units; must match the data preprocessor's).
        clip_mean, clip_std (Sequence[float]): CLIP's normalisation.
        reference_input_scaling (bool): Reproduce the reference's
            ``(x + 1) / 2`` squeeze (see above).
    """

    def __init__(self,
                 checkpoint: Optional[str] = None,
                 arch: Optional[dict] = None,
                 trust_checkpoint: Optional[bool] = None,
                 input_size: Optional[int] = None,
                 input_mean: Sequence[float] = IMAGENET_MEAN,
                 input_std: Sequence[float] = IMAGENET_STD,
                 clip_mean: Sequence[float] = CLIP_MEAN,
                 clip_std: Sequence[float] = CLIP_STD,
                 reference_input_scaling: bool = True,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if checkpoint is None and arch is None:
            raise ValueError('iTPNCLIPTeacher needs `checkpoint` (a local '
                             'CLIP ViT file) or, for tests, an `arch` dict')
        state = None
        if checkpoint is not None:
            state = _load_clip_visual_state(checkpoint, trust_checkpoint)
            width, _, patch, _ = state['conv1.weight'].shape
            grid = int(round((state['positional_embedding'].shape[0] - 1)**.5))
            found = dict(
                input_resolution=patch * grid,
                patch_size=patch,
                width=width,
                layers=len({k.split('.')[2] for k in state
                            if k.startswith('transformer.resblocks.')}),
                heads=max(1, width // 64),  # OpenAI CLIP: 64-d heads
                output_dim=state['proj'].shape[1])
            if arch is not None and dict(arch) != found:
                raise ValueError(
                    f'CLIP teacher checkpoint {checkpoint!r} holds a tower '
                    f'{found}, the config expects {dict(arch)}')
            arch = found
        self.arch = dict(arch)
        self.input_size = input_size
        built = dict(self.arch)
        if input_size is not None and \
                input_size != self.arch['input_resolution']:
            patch = self.arch['patch_size']
            if input_size % patch:
                raise ValueError(f'input_size {input_size} is not a multiple '
                                 f'of the teacher\'s patch size {patch}')
            built['input_resolution'] = input_size
            if state is not None:
                src = self.arch['input_resolution'] // patch
                pos = state['positional_embedding']
                patch_pos = resample_pos_embed_reference(
                    pos[None, 1:], (src, src),
                    (input_size // patch, input_size // patch))[0]
                state['positional_embedding'] = torch.cat([pos[:1],
                                                           patch_pos])
        self.visual = VisionTransformer(**built)
        if state is not None:
            self.visual.load_state_dict(state, strict=True)
        self.visual.requires_grad_(False)
        self.visual.eval()
        self.reference_input_scaling = reference_input_scaling
        for name, value in (('input_mean', input_mean),
                            ('input_std', input_std),
                            ('clip_mean', clip_mean), ('clip_std', clip_std)):
            self.register_buffer(name,
                                 torch.tensor(value).view(1, 3, 1, 1) / 255.,
                                 persistent=False)

    def init_weights(self):
        """The teacher is fixed: nothing to initialise."""

    def train(self, mode: bool = True):
        super().train(mode)
        self.visual.eval()  # always frozen
        return self

    @torch.no_grad()
    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """(B, L, output_dim) normalised patch-token targets."""
        x = img * self.input_std + self.input_mean  # [0, 1]
        size = self.input_size
        if size is not None and tuple(x.shape[-2:]) != (size, size):
            # PIL's resize saturates at the uint8 range: clamp the overshoot
            x = F.interpolate(x, size=(size, size), mode='bicubic',
                              align_corners=False, antialias=True).clamp(0, 1)
        if self.reference_input_scaling:
            x = ((x + 1.) * 127.5).clamp(0, 255.) / 255.
        feats, _ = self.visual((x - self.clip_mean) / self.clip_std)
        feats = feats[:, 1:].float()
        return F.layer_norm(feats, feats.shape[-1:])


@MODELS.register_module()
class iTPNEMATeacher(BaseModule):
    """Moving-average copy of the student backbone (iTPN paper's MFM).

    Call :meth:`update` with the student every step (the first call copies
    it); :meth:`forward` gives the teacher's unmasked stride-4/8/16 features
    in token layout, each normalised by a LayerNorm without affine.

    Args:
        momentum (float): mmengine's EMA momentum: teacher = (1 - m) *
            teacher + m * student (m = 1 - decay; 1e-3 is a 0.999 decay).
    """

    def __init__(self, momentum: float = 1e-3,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.momentum = momentum
        self.ema = None

    def setup(self, backbone: nn.Module) -> None:
        """Create the averaged copy of ``backbone`` (called by the algorithm
        at construction, so that checkpoints resume it)."""
        self.ema = ExponentialMovingAverage(backbone, momentum=self.momentum)
        self.ema.module.eval()

    def init_weights(self):
        """The copy is (re)taken from the student at its first update."""

    def train(self, mode: bool = True):
        super().train(mode)
        if self.ema is not None:
            self.ema.module.eval()
        return self

    @torch.no_grad()
    def update(self, backbone: nn.Module) -> None:
        self.ema.update_parameters(backbone)

    @torch.no_grad()
    def forward(self, img: torch.Tensor):
        """``(t4, t8, t16)``: (B, L, 4, 4, C/4), (B, L, 2, 2, C/2),
        (B, L, C)."""
        feats = self.ema.module.forward_tokens(img)[:3]
        return tuple(F.layer_norm(f.float(), f.shape[-1:]) for f in feats)
