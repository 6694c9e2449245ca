"""Run the reference implementations on fixed inputs and save parity fixtures.

Run by hand (not in CI), with a throw-away Python that has the reference
code's old dependencies, never mmmim's venv::

    REFENV=/path/to/refenv   # throw-away env with the reference deps
    REFS=/path/to/refs       # git clones of the reference repositories
    $REFENV/venv/bin/python tools/parity/make_fixtures.py \\
        --refs $REFS --timm-0.3.2 $REFENV/timm032 \\
        --timm-0.6 $REFENV/timm0613 [--cases itpn_pixel,mae ...]

``--refs`` holds git clones of facebookresearch/mae (``mae``),
microsoft/SimMIM (``SimMIM``), Haochen-Wang409/HPM (``HPM``),
OpenGVLab/Siamese-Image-Modeling (``Siamese-Image-Modeling``) and
sunsmarterjie/iTPN (``iTPN``). Their code is imported from there, never
copied. Each case builds a small variant of a reference model with a fixed
seed, perturbs its parameters (so that no zero bias or unit LayerNorm hides a
difference), runs it (eval mode; SIM in train mode, its BatchNorm on batch
statistics as in training) on fixed inputs and masks and writes
``<out>/<case>.pt``: ``meta`` (reference repository, commit, builder and its
arguments), ``state_dict`` (reference names), ``inputs``, ``outputs`` (final
outputs and a few intermediate tensors). ``tests/test_reference_parity.py``
converts the state dicts with mmmim's converters and compares.

``--check-base itpn_pixel --out DIR`` writes the same case at base size
(random init; about 220 MB) for ``tools/parity/check_itpn_base.py``.

Each case runs in a child process whose ``sys.path`` holds the reference
repository and the timm version it was written for (0.3.2; 0.6.12 for SIM,
which does not import on Python 3.11, so 0.6.13);
``torch._six`` (removed from torch) is replaced by a stand-in module.
"""
import argparse
import collections.abc
import contextlib
import importlib.util
import math
import os
import os.path as osp
import subprocess
import sys
import types

import torch

if __name__ == '__main__':
    # training_cases/ imports this file's helpers as ``make_fixtures``: the
    # same module, so that its cases land in this CASES
    sys.modules.setdefault('make_fixtures', sys.modules['__main__'])

HERE = osp.dirname(osp.abspath(__file__))
DEFAULT_OUT = osp.join(HERE, '..', '..', 'tests', 'data', 'reference')

#: case -> (repository folder under --refs, sub-folder on sys.path, timm)
CASES = {}


def case(repo, subdir, timm='0.3.2'):
    def register(fn):
        CASES[fn.__name__] = (repo, subdir, timm, fn)
        return fn
    return register


# ----------------------------------------------------------------- helpers
def install_torch_six():
    """``torch._six`` was removed from torch; old timm and the references
    import a few names from it."""
    six = types.ModuleType('torch._six')
    six.inf = math.inf
    six.string_classes = str
    six.int_classes = int
    six.container_abcs = collections.abc
    sys.modules['torch._six'] = six


def install_pkg_resources():
    """iTPN's ``itpn_clip/clip/clip.py:6`` takes ``packaging`` from
    ``pkg_resources`` (gone from setuptools 81 on) to compare torch
    versions: pip's vendored copy of the same package stands in."""
    if importlib.util.find_spec('pkg_resources') is None:
        import pip._vendor.packaging as packaging
        import pip._vendor.packaging.version  # noqa: F401
        module = types.ModuleType('pkg_resources')
        module.packaging = packaging
        sys.modules['pkg_resources'] = module


def perturb(model, seed, std=0.02, skip=('pos_embed', )):
    """Add N(0, std) to every parameter except fixed sin-cos tables (names
    ending in ``skip`` that do not require grad), then round it to a float16
    value: the model runs in float32 with exactly the values the fixture
    stores in half the bytes (:func:`state_of`). Momentum / EMA copies are
    perturbed too, so that they differ from the online weights."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.requires_grad and name.endswith(skip):
                continue
            p.add_(torch.randn(p.shape, generator=g) * std)
            p.copy_(p.half().float())
    return model


def compact(obj):
    """float32 tensors whose values are float16-exact (perturbed parameters,
    rounded inputs) stored as float16; everything else as it is."""
    if isinstance(obj, dict):
        return {k: compact(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [compact(v) for v in obj]
    if torch.is_tensor(obj):
        obj = obj.detach().clone()
        if obj.dtype == torch.float32 and torch.equal(obj.half().float(),
                                                      obj):
            return obj.half()
    return obj


def state_of(model):
    return compact(model.state_dict())


def randn(*shape, seed):
    """Standard normal inputs rounded to float16 values (stored in half the
    bytes, used in float32)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g).half().float()


@contextlib.contextmanager
def given_rand(noise):
    """Make ``torch.rand`` return ``noise`` when asked for its shape, so that
    a reference's own random masking (``argsort(torch.rand(N, L))``) runs
    unmodified with a chosen mask."""
    real = torch.rand

    def rand(*size, **kwargs):
        shape = size[0] if len(size) == 1 and not isinstance(size[0], int) \
            else size
        if tuple(shape) == tuple(noise.shape):
            return noise.clone()
        return real(*size, **kwargs)

    torch.rand = rand
    try:
        yield
    finally:
        torch.rand = real


def masking_noise(mask):
    """Noise whose argsort lists the visible patches, then the masked ones,
    each in raster order (the order mmmim uses, so that intermediate tensors
    line up token by token)."""
    L = mask.shape[1]
    return (torch.arange(L, dtype=torch.float)[None] + L * mask.float()) / \
        (2 * L)


def mask_with_counts(num_images, num_patches, num_masked, seed):
    """(B, L) bool masks with ``num_masked[i]`` random patches of image i
    hidden."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(num_images, num_patches, dtype=torch.bool)
    for i, n in enumerate(num_masked):
        mask[i, torch.randperm(num_patches, generator=g)[:n]] = True
    return mask


def visible_first_ids(mask):
    """MAE-style ``ids_shuffle`` / ``ids_restore`` of :func:`masking_noise`."""
    ids_shuffle = torch.argsort(masking_noise(mask), dim=1)
    return ids_shuffle, torch.argsort(ids_shuffle, dim=1)


class Recorder:
    """Forward hooks keeping the outputs of named modules."""

    def __init__(self, **modules):
        self.out = {}
        self.handles = [
            m.register_forward_hook(self._hook(name))
            for name, m in modules.items()
        ]

    def _hook(self, name):
        def fn(module, args, output):
            self.out[name] = output
        return fn

    def remove(self):
        for h in self.handles:
            h.remove()


def detach(obj):
    if torch.is_tensor(obj):
        return obj.detach().clone()
    if isinstance(obj, (list, tuple)):
        return [detach(o) for o in obj]
    if isinstance(obj, dict):
        return {k: detach(v) for k, v in obj.items()}
    return obj


def layer_norm_1e6():
    from functools import partial
    return partial(torch.nn.LayerNorm, eps=1e-6)


VIT_TINY = dict(img_size=32, patch_size=8, embed_dim=64, depth=2,
                num_heads=2, mlp_ratio=2.)
MAE_DECODER_TINY = dict(decoder_embed_dim=32, decoder_depth=1,
                        decoder_num_heads=2)


# -------------------------------------------------------------------- MAE
@case('mae', '')
def mae():
    """MAE pre-training (norm_pix on and off: the same forward, both
    losses) and the fine-tuning forward of ``models_vit`` with global pool
    (mean of the patch tokens, ``fc_norm``, head), initialised from the
    pre-trained encoder as ``main_finetune.py`` does."""
    import models_vit
    from models_mae import MaskedAutoencoderViT
    kwargs = dict(**VIT_TINY, **MAE_DECODER_TINY)
    torch.manual_seed(0)
    model = MaskedAutoencoderViT(norm_layer=layer_norm_1e6(),
                                 norm_pix_loss=True, **kwargs)
    perturb(model, 1).eval()
    g = torch.Generator().manual_seed(2)
    img = randn(2, 3, 32, 32, seed=2)
    mask = mask_with_counts(2, 16, [12, 12], 3)
    with torch.no_grad(), given_rand(masking_noise(mask)):
        latent, ref_mask, ids_restore = model.forward_encoder(img, 0.75)
    assert torch.equal(ref_mask.bool(), mask)
    with torch.no_grad():
        pred = model.forward_decoder(latent, ids_restore)
        loss_norm_pix = model.forward_loss(img, pred, ref_mask)
        model.norm_pix_loss = False
        loss_raw = model.forward_loss(img, pred, ref_mask)

    ft_kwargs = dict(img_size=32, patch_size=8, embed_dim=64, depth=2,
                     num_heads=2, mlp_ratio=2, qkv_bias=True, num_classes=10)
    torch.manual_seed(4)
    ft = models_vit.VisionTransformer(global_pool=True,
                                      norm_layer=layer_norm_1e6(),
                                      **ft_kwargs)
    pretrained = {k: v for k, v in model.state_dict().items()
                  if not k.startswith(('decoder', 'mask_token', 'norm.'))}
    result = ft.load_state_dict(pretrained, strict=False)
    new_keys = sorted(result.missing_keys)
    assert new_keys == ['fc_norm.bias', 'fc_norm.weight', 'head.bias',
                        'head.weight'], new_keys
    with torch.no_grad():
        for name, p in ft.named_parameters():
            if name in new_keys:
                p.add_(torch.randn(p.shape, generator=g) * 0.02)
                p.copy_(p.half().float())
    ft.eval()
    with torch.no_grad():
        pooled = ft.forward_features(img)
        logits = ft.head(pooled)
    ft_state = state_of(ft)
    return dict(
        meta=dict(builder='models_mae.py:MaskedAutoencoderViT', kwargs=kwargs,
                  norm_eps=1e-6,
                  finetune_builder='models_vit.py:VisionTransformer'
                  '(global_pool=True)', finetune_kwargs=ft_kwargs),
        state_dict=state_of(model),
        # the fine-tuning model is the pre-trained encoder plus these
        finetune_new=({k: ft_state[k] for k in new_keys}),
        inputs=compact(dict(img=img, mask=mask)),
        outputs=detach(dict(latent=latent, pred=pred,
                            loss_norm_pix=loss_norm_pix, loss=loss_raw,
                            finetune_pooled=pooled,
                            finetune_logits=logits)))


# ----------------------------------------------------------------- SimMIM
@case('SimMIM', '')
def simmim():
    """SimMIM ViT pre-training (``build_simmim``'s ViT: shared relative
    position bias, layer scale 0.1, no absolute table; encoder stride = patch
    size) and the fine-tuning ViT (``build_vit``: a relative position bias
    table per block, mean pooling + fc_norm, head)."""
    from models.simmim import SimMIM, VisionTransformerForSimMIM
    from models.vision_transformer import VisionTransformer
    kwargs = dict(img_size=32, patch_size=8, in_chans=3, num_classes=0,
                  embed_dim=64, depth=2, num_heads=2, mlp_ratio=2,
                  qkv_bias=True, drop_rate=0., drop_path_rate=0.,
                  init_values=0.1, use_abs_pos_emb=False,
                  use_rel_pos_bias=False, use_shared_rel_pos_bias=True,
                  use_mean_pooling=False)
    torch.manual_seed(0)
    encoder = VisionTransformerForSimMIM(norm_layer=layer_norm_1e6(),
                                         **kwargs)
    model = perturb(SimMIM(encoder=encoder, encoder_stride=8), 1).eval()
    img = randn(2, 3, 32, 32, seed=2)
    mask = mask_with_counts(2, 16, [10, 7], 3)
    rec = Recorder(encoder=model.encoder, decoder=model.decoder)
    with torch.no_grad():
        loss = model(img, mask.view(2, 4, 4).int())
    rec.remove()

    ft_kwargs = dict(kwargs, num_classes=10, use_rel_pos_bias=True,
                     use_shared_rel_pos_bias=False, use_mean_pooling=True)
    torch.manual_seed(4)
    ft = perturb(VisionTransformer(norm_layer=layer_norm_1e6(),
                                   **ft_kwargs), 5).eval()
    with torch.no_grad():
        pooled = ft.forward_features(img)
        logits = ft.head(pooled)
    return dict(
        meta=dict(builder='models/simmim.py:SimMIM('
                  'VisionTransformerForSimMIM)', kwargs=kwargs,
                  encoder_stride=8, norm_eps=1e-6,
                  finetune_builder='models/vision_transformer.py:'
                  'VisionTransformer', finetune_kwargs=ft_kwargs),
        state_dict=state_of(model),
        finetune_state_dict=state_of(ft),
        inputs=compact(dict(img=img, mask=mask)),
        outputs=detach(dict(encoder=rec.out['encoder'],
                            pred=rec.out['decoder'], loss=loss,
                            finetune_pooled=pooled,
                            finetune_logits=logits)))


# -------------------------------------------------------------------- HPM
@case('HPM', '')
def hpm():
    """HPM: the EMA teacher's loss map on the fully visible image, the
    easy-to-hard mask ``generate_mask`` makes of it (epoch 119 of 200: 3 of
    the 12 masked patches are the hardest, the rest random), the student
    under that mask, its reconstruction loss and both loss-predictor losses
    (relative and MSE), as ``engine_pretrain.py`` computes them."""
    import numpy as np
    from models_mae_learn_loss import MaskedAutoencoderViT
    kwargs = dict(**VIT_TINY, **MAE_DECODER_TINY, norm_pix_loss=False)
    torch.manual_seed(0)
    student = perturb(MaskedAutoencoderViT(norm_layer=layer_norm_1e6(),
                                           **kwargs), 1).eval()
    teacher = MaskedAutoencoderViT(norm_layer=layer_norm_1e6(), **kwargs)
    teacher.load_state_dict(student.state_dict())
    perturb(teacher, 2, std=0.01).eval()  # an EMA that has drifted
    img = randn(2, 3, 32, 32, seed=3)
    N, L, mask_ratio, epoch, total_epoch = 2, 16, 0.75, 119, 200
    with torch.no_grad():
        visible = torch.zeros(N, L, dtype=torch.bool)
        outs_ema = teacher(img, mask=visible)
        scores = outs_ema['loss_pred']
        np.random.seed(4)
        mask = teacher.generate_mask(scores, mask_ratio=mask_ratio,
                                     guide=True, epoch=epoch,
                                     total_epoch=total_epoch).bool()
    # the shuffles generate_mask drew, as a priority per patch: the
    # non-hard patches in shuffled order get increasing priorities, so that
    # "mask the hardest K, then the highest priorities" is the same mask
    len_keep = int(L * (1 - mask_ratio))
    num_hard = int((L - len_keep) * float((epoch + 1) / total_epoch) * 0.5)
    np.random.seed(4)
    noise = torch.zeros(N, L)
    hard = torch.argsort(scores, dim=1)[:, L - num_hard:]
    for i in range(N):
        rest = np.delete(np.arange(L), hard[i].numpy())
        perm = np.random.permutation(len(rest))
        noise[i, torch.from_numpy(rest[perm])] = \
            (torch.arange(len(rest), dtype=torch.float) + 0.5) / len(rest)
    check = noise.clone()
    check.scatter_(1, hard, 2.)
    again = torch.zeros(N, L, dtype=torch.bool).scatter_(
        1, check.topk(L - len_keep, dim=1).indices, True)
    assert torch.equal(again, mask), 'priority does not reproduce the mask'

    with torch.no_grad():
        outs = student(img, mask=mask)
        m = outs['mask_num']
        loss_outs = student.forward_loss(img, outs['pix_pred'][:, -m:], mask)
        loss_relative = student.forward_learning_loss(
            outs['loss_pred'][:, -m:], mask, loss_outs['matrix'],
            relative=True)
        loss_mse = student.forward_learning_loss(
            outs['loss_pred'][:, -m:], mask, loss_outs['matrix'],
            relative=False)
    return dict(
        meta=dict(builder='models_mae_learn_loss.py:MaskedAutoencoderViT',
                  kwargs=kwargs, norm_eps=1e-6, mask_ratio=mask_ratio,
                  epoch=epoch, total_epoch=total_epoch, num_hard=num_hard),
        state_dict=state_of(student),
        ema_state_dict=state_of(teacher),
        inputs=compact(dict(img=img, noise=noise)),
        outputs=detach(dict(
            teacher_scores=scores, teacher_features=outs_ema['features'],
            mask=mask, latent=outs['features'],
            # [visible..., masked...] per image, each in raster order
            pix_pred=outs['pix_pred'], loss_pred=outs['loss_pred'],
            loss_matrix=loss_outs['matrix'], loss=loss_outs['mean'],
            loss_pred_relative=loss_relative, loss_pred_mse=loss_mse)))


# -------------------------------------------------------------------- SIM
@case('Siamese-Image-Modeling', '', timm='0.6')
def sim():
    """SIM (``loss_type='sim'``, block-wise mask, BatchNorm projector and
    predictor, train mode as in training): two views with crop boxes and
    flips (one relative flip), the relative geometry as
    ``DataAugmentationForSIM`` computes it, the UniGrad loss with and
    without the momentum update before the target pass, and the momentum
    weights after it."""
    import argparse as _argparse
    import copy
    from functools import partial
    import torch.distributed as dist
    from models_sim import SiameseIMViT
    from util.misc import LayerNorm
    if not dist.is_initialized():
        dist.init_process_group('gloo', init_method='tcp://127.0.0.1:29533',
                                rank=0, world_size=1)
    args = _argparse.Namespace(
        decoder_embed_dim=32, use_abs_pos_emb=True, drop_path_rate=0.,
        init_values=None, loss_type='sim', projector_depth=1,
        predictor_depth=1, use_proj_ln=False, use_pred_ln=False,
        online_ln=False, train_patch_embed=False, with_blockwise_mask=True,
        neg_weight=0.02)
    kwargs = dict(img_size=32, patch_size=8, embed_dim=64, depth=2,
                  num_heads=2, decoder_depth=1, decoder_num_heads=2,
                  mlp_ratio=2)
    torch.manual_seed(0)
    model = SiameseIMViT(norm_layer=partial(LayerNorm, eps=1e-6), args=args,
                         **kwargs)
    perturb(model, 1).train()
    x1 = randn(2, 3, 32, 32, seed=2)
    x2 = randn(2, 3, 32, 32, seed=12)
    mask = mask_with_counts(2, 16, [9, 9], 3)
    # crop boxes (i, j, h, w) in the (flipped) source image of width W
    W = 100.
    boxes = torch.tensor([[[10., 20., 60., 50.], [25., 5., 70., 80.]],
                          [[0., 30., 90., 64.], [12., 14., 48., 40.]]])
    flips = torch.tensor([[False, True], [True, True]])
    (i1, j1, h1, w1), (i2, j2, h2, w2) = boxes[:, 0].T, boxes[:, 1].T
    relative_flip = flips[:, 0] ^ flips[:, 1]
    # main_pretrain.py DataAugmentationForSIM.__call__
    rel_pos_21 = ((i2 - i1) / h1, (j2 - j1) / w1, h2 / h1, w2 / w1,
                  relative_flip, (W - j1 - j2) / w1)
    mm = 0.99
    before = state_of(model)
    outputs = {}
    for update in (False, True):
        m = copy.deepcopy(model)
        rec = Recorder(pred=m.decoder_pred,
                       target=m.mm_projector_decoder_blocks[-1])
        with torch.no_grad():
            loss, _ = m(x1, x2, rel_pos_21, mm, update, mask=mask)
        rec.remove()
        tag = 'update' if update else 'no_update'
        outputs[f'loss_{tag}'] = loss
        outputs[f'pred_{tag}'] = rec.out['pred'][:, -16:]
        # the momentum projector's output before the target LayerNorm
        outputs[f'target_{tag}'] = rec.out['target'][:, 1:]
        if update:
            # a few momentum tensors after the update (the rule is the
            # same for all)
            outputs['momentum_state'] = {
                k: v for k, v in m.state_dict().items() if k in (
                    'mm_cls_token', 'mm_blocks.1.attn.qkv.weight',
                    'mm_projector_decoder_blocks.0.mlp.fc2.weight',
                    'mm_patch_embed.proj.bias', 'mm_mask_token')}
    dist.destroy_process_group()
    return dict(
        meta=dict(builder='models_sim.py:SiameseIMViT', kwargs=kwargs,
                  args=vars(args), norm_eps=1e-6, momentum=mm, img_width=W),
        state_dict=before,
        inputs=compact(dict(x1=x1, x2=x2, mask=mask, crop_boxes=boxes,
                            flips=flips, rel_pos_21=list(rel_pos_21))),
        outputs=detach(outputs))


# ------------------------------------------------------------------- iTPN
ITPN_TINY = dict(img_size=32, patch_size=8, embed_dim=64, mlp_depth=1,
                 depth=2, num_heads=2, fpn_dim=32, fpn_depth=1,
                 decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2)
ITPN_BASE = dict(img_size=224, patch_size=16, embed_dim=512, mlp_depth=3,
                 depth=24, num_heads=8, fpn_dim=256, fpn_depth=2,
                 decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16)


def itpn_pixel_run(kwargs, num_masked, seed=0):
    """The reference pixel model (``itpn_base_dec512d8b``'s construction with
    ``kwargs``) on a fixed image batch and mask."""
    from functools import partial
    from models.models_itpn_mim import iTPNMaskedAutoencoder
    torch.manual_seed(seed)
    model = iTPNMaskedAutoencoder(
        bridge_mlp_ratio=3., mlp_ratio=4., num_outs=3, rpe=False,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), **kwargs)
    perturb(model, seed + 1)
    model.eval()
    n = kwargs['img_size'] // kwargs['patch_size']
    img = randn(len(num_masked), 3, kwargs['img_size'], kwargs['img_size'],
                seed=seed + 2)
    mask = mask_with_counts(len(num_masked), n * n, num_masked, seed + 3)
    ids_shuffle, ids_restore = visible_first_ids(mask)
    ids_keep = ids_shuffle[:, :n * n - num_masked[0]]
    rec = Recorder(main=model.blocks[-1])
    with torch.no_grad():
        # MaskedAutoencoder.forward with the mask given instead of drawn
        latent = model.forward_features(img, ids_keep=ids_keep)
        _, pred = model.forward_decoder(latent, ids_restore)
        loss = model.forward_loss(img, None, pred, mask.float())
        target = model.patchify(img)
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1.e-6)**.5
    rec.remove()
    return dict(
        meta=dict(builder='itpn_pixel/models/models_itpn_mim.py:'
                  'iTPNMaskedAutoencoder', kwargs=kwargs, norm_eps=1e-6,
                  rpe=False),
        state_dict=state_of(model),
        inputs=compact(dict(img=img, mask=mask)),
        outputs=detach(dict(main=rec.out['main'], pyramid=latent,
                            pred=pred, target=target, loss=loss)))


@case('iTPN', 'itpn_pixel')
def itpn_pixel():
    """iTPN pixel pre-training; two images with 12 of 16 patches masked."""
    return itpn_pixel_run(ITPN_TINY, num_masked=[12, 12])


@case('iTPN', 'itpn_pixel')
def itpn_pixel_base():
    """Base size, random init (``--check-base``), 147 of 196 masked."""
    return itpn_pixel_run(ITPN_BASE, num_masked=[147, 147])


@case('iTPN', 'itpn_pixel')
def itpn_hivit_finetune():
    """The fine-tuning model (``itpn_base``'s construction: relative position
    bias, mean pool, fc_norm, linear head) on an unmasked batch."""
    from functools import partial
    from models.models_itpn import iTPN
    kwargs = dict(img_size=32, patch_size=8, embed_dim=64, mlp_depth=1,
                  depth=2, num_heads=2, num_classes=10)
    torch.manual_seed(0)
    model = iTPN(bridge_mlp_ratio=3., mlp_ratio=4., rpe=True, num_outs=1,
                 norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), **kwargs)
    perturb(model, 1)
    model.eval()
    img = randn(2, 3, 32, 32, seed=2)
    with torch.no_grad():
        feats = model.forward_features(img)
        pooled = model.fc_norm(feats.mean(dim=1))
        logits = model.head(pooled)
    return dict(
        meta=dict(builder='itpn_pixel/models/models_itpn.py:iTPN',
                  kwargs=kwargs, norm_eps=1e-6, rpe=True),
        state_dict=state_of(model),
        inputs=compact(dict(img=img)),
        outputs=detach(dict(main=feats, pooled=pooled, logits=logits)))


@case('iTPN', 'itpn_clip')
def itpn_clip():
    """iTPN with a (tiny, random) CLIP teacher: the reference student
    ``iTPNClipDistill`` and teacher wrapper ``clip_distill`` (its
    ``ScalingLayerForClip`` and target LayerNorm) around a tiny OpenAI CLIP.
    The student gets the ImageNet-normalised image, the teacher the [0, 1]
    image, as the reference pipeline hands them."""
    from functools import partial
    import clip.create_clip as create_clip
    from clip.model import CLIP
    from modeling_pretrain import iTPNClipDistill
    kwargs = dict(img_size=32, patch_size=8, embed_dim=64, mlp_depth1=1,
                  mlp_depth2=1, depth=5, num_heads=2, fpn_dim=32,
                  fpn_depth=1, teacher_dim=24, init_values=0.1,
                  mlp_ratio=2.)
    # depth 5: the reference's auxiliary blocks take the drop-path rates of
    # main blocks int(0.75 * depth) + (0, 1), which must exist
    torch.manual_seed(0)
    model = iTPNClipDistill(bridge_mlp_ratio=3., num_outs=3,
                            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                            **kwargs)
    perturb(model, 1)
    model.eval()
    clip_kwargs = dict(embed_dim=24, image_resolution=32, vision_layers=1,
                       vision_width=64, vision_patch_size=8,
                       context_length=4, vocab_size=16, transformer_width=16,
                       transformer_heads=1, transformer_layers=1)
    torch.manual_seed(3)
    clip_model = perturb(CLIP(**clip_kwargs).float(), 5).eval()
    # clip_distill.__init__ downloads the OpenAI weights; build it around the
    # tiny model instead (its forward is the reference's get_target)
    teacher = create_clip.clip_distill.__new__(create_clip.clip_distill)
    torch.nn.Module.__init__(teacher)
    teacher.scaling_layer = create_clip.ScalingLayerForClip()
    teacher.teacher_model = clip_model
    teacher.LN = torch.nn.LayerNorm(24, elementwise_affine=False)
    teacher.eval()

    g = torch.Generator().manual_seed(2)
    # 0-255 pixel values, as an image file gives them
    img01 = torch.randint(0, 256, (2, 3, 32, 32), generator=g) / 255.
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    # what mmmim's data preprocessor makes of the same 0-255 image
    img = (img01 * 255 - mean * 255) / (std * 255)
    mask = mask_with_counts(2, 16, [6, 9], 4)
    rec = Recorder(main=model.blocks[-1])
    with torch.no_grad():
        outs, aux = model.forward_features_for_pretraining(img, mask)
        main_pred, aux_pred = model(img, bool_masked_pos=mask)
        target = teacher(img01)
        loss_fn = torch.nn.SmoothL1Loss()
        loss = loss_fn(input=main_pred, target=target) + \
            loss_fn(input=aux_pred, target=target)
    rec.remove()
    return dict(
        meta=dict(builder='itpn_clip/modeling_pretrain.py:iTPNClipDistill',
                  kwargs=kwargs, norm_eps=1e-6, rpe=True,
                  teacher='itpn_clip/clip/create_clip.py:clip_distill',
                  clip_kwargs=clip_kwargs,
                  input_mean=(0.485, 0.456, 0.406),
                  input_std=(0.229, 0.224, 0.225)),
        state_dict=state_of(model),
        teacher_state_dict=state_of(clip_model.visual),
        inputs=compact(dict(img=img, img01=img01, mask=mask)),
        outputs=detach(dict(main=rec.out['main'], pyramid=outs, aux=aux,
                            main_pred=main_pred, aux_pred=aux_pred,
                            target=target, loss=loss)))


# ----------------------------------------- training loops (training_cases/)
import training_cases  # noqa: E402,F401  (registers the *_train cases)


# ------------------------------------------------------------- the driver
def git_commit(path):
    try:
        return subprocess.check_output(['git', '-C', path, 'rev-parse',
                                        'HEAD'], text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'


def run_child(name, args):
    """Run one case here (the child process) and write its file."""
    repo, subdir, timm, fn = CASES[name]
    repo_path = osp.join(args.refs, repo)
    install_torch_six()
    install_pkg_resources()
    timm_path = getattr(args, 'timm_' + timm.replace('.', '_'))
    if not timm_path:
        sys.exit(f'{name} needs --timm-{timm}')
    sys.path[:0] = [timm_path, osp.join(repo_path, subdir)]
    os.chdir(osp.join(repo_path, subdir))
    torch.set_num_threads(1)
    result = fn()
    import timm
    result['meta'].update(
        case=name, doc=fn.__doc__.strip(), repository=repo,
        commit=git_commit(repo_path), timm=timm.__version__,
        torch=str(torch.__version__))
    os.makedirs(args.out, exist_ok=True)
    path = osp.join(args.out, f'{name}.pt')
    torch.save(result, path)
    print(f'{name}: {path} ({osp.getsize(path) / 1024:.0f} KiB, '
          f'{result["meta"]["repository"]} @ {result["meta"]["commit"][:7]})')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--refs', required=True,
                        help='folder with the reference clones')
    parser.add_argument('--timm-0.3.2', dest='timm_0_3_2', required=True,
                        help='a `pip install --target` folder of timm 0.3.2')
    parser.add_argument('--timm-0.6', dest='timm_0_6',
                        help='the same for timm 0.6 (SIM; 0.6.13: 0.6.12 '
                        'does not import on Python 3.11)')
    parser.add_argument('--cases', help='comma-separated subset of: ' +
                        ', '.join(n for n in CASES if not n.endswith('_base')))
    parser.add_argument('--check-base', choices=['itpn_pixel'],
                        help='write the base-size case instead')
    parser.add_argument('--out', default=DEFAULT_OUT)
    parser.add_argument('--child', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    args.refs = osp.abspath(args.refs)
    args.out = osp.abspath(args.out)
    if args.child:
        return run_child(args.child, args)
    if args.check_base:
        names = [args.check_base + '_base']
    elif args.cases:
        names = args.cases.split(',')
    else:
        names = [n for n in CASES if not n.endswith('_base')]
    for name in names:
        if name not in CASES:
            sys.exit(f'unknown case {name!r}')
        cmd = [sys.executable, osp.abspath(__file__), '--child', name,
               '--refs', args.refs, '--timm-0.3.2', args.timm_0_3_2,
               '--out', args.out]
        if args.timm_0_6:
            cmd += ['--timm-0.6', args.timm_0_6]
        subprocess.run(cmd, check=True)


if __name__ == '__main__':
    main()
