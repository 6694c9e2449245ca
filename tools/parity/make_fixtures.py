"""Run the reference implementations on fixed inputs and save parity fixtures.

Run by hand (not in CI), with a throw-away Python that has the reference
code's old dependencies, never mmmim's venv::

    REFENV=/work/refenv
    $REFENV/venv/bin/python tools/parity/make_fixtures.py \\
        --refs /work/refs --timm-0.3.2 $REFENV/timm032 \\
        --timm-0.6.12 $REFENV/timm0612 [--cases itpn_pixel,mae_normpix ...]

``--refs`` holds git clones of facebookresearch/mae (``mae``),
microsoft/SimMIM (``SimMIM``), Haochen-Wang409/HPM (``HPM``),
OpenGVLab/Siamese-Image-Modeling (``Siamese-Image-Modeling``) and
sunsmarterjie/iTPN (``iTPN``). Their code is imported from there, never
copied. Each case builds a small variant of a reference model with a fixed
seed, perturbs its parameters (so that no zero bias or unit LayerNorm hides a
difference), runs it in eval mode on fixed inputs and masks and writes
``<out>/<case>.pt``: ``meta`` (reference repository, commit, builder and its
arguments), ``state_dict`` (reference names), ``inputs``, ``outputs`` (final
outputs and a few intermediate tensors). ``tests/test_reference_parity.py``
converts the state dicts with mmmim's converters and compares.

``--check-base itpn_pixel --out DIR`` writes the same case at base size
(random init; about 450 MB) for ``tools/parity/check_itpn_base.py``.

Each case runs in a child process whose ``sys.path`` holds the reference
repository and the timm version it was written for (0.3.2, 0.6.12 for SIM);
``torch._six`` (removed from torch) is replaced by a stand-in module.
"""
import argparse
import collections.abc
import importlib
import math
import os
import os.path as osp
import subprocess
import sys
import types

import torch

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


def perturb(model, seed, std=0.02):
    """Add N(0, std) to every trainable parameter (fixed buffers such as the
    sin-cos decoder tables stay as built), then round it to a float16 value:
    the model runs in float32 with exactly the values the fixture stores in
    half the bytes (:func:`state_of`)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * std)
                p.copy_(p.half().float())
    return model


def state_of(model):
    """State dict with the trainable (float16-exact) tensors stored as
    float16; everything else as it is."""
    trainable = {k for k, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().clone().half() if k in trainable
            else v.detach().clone()
            for k, v in model.state_dict().items()}


def mask_with_counts(num_images, num_patches, num_masked, seed):
    """(B, L) bool masks, ``num_masked[i]`` random patches hidden in image i."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(num_images, num_patches, dtype=torch.bool)
    for i, n in enumerate(num_masked):
        mask[i, torch.randperm(num_patches, generator=g)[:n]] = True
    return mask


def visible_first_ids(mask):
    """MAE-style ``ids_shuffle`` / ``ids_restore`` for a given mask:
    visible patches first, then masked, each in raster order (the order
    mmmim uses, so intermediate tensors line up token by token)."""
    L = mask.shape[1]
    noise = torch.arange(L, dtype=torch.float)[None] + L * mask.float()
    ids_shuffle = torch.argsort(noise, dim=1)
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
    g = torch.Generator().manual_seed(seed + 2)
    img = torch.randn(len(num_masked), 3, kwargs['img_size'],
                      kwargs['img_size'], generator=g)
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
        inputs=dict(img=img, mask=mask),
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
    img = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        feats = model.forward_features(img)
        pooled = model.fc_norm(feats.mean(dim=1))
        logits = model.head(pooled)
    return dict(
        meta=dict(builder='itpn_pixel/models/models_itpn.py:iTPN',
                  kwargs=kwargs, norm_eps=1e-6, rpe=True),
        state_dict=state_of(model),
        inputs=dict(img=img),
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
    img01 = torch.rand(2, 3, 32, 32, generator=g)
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
        inputs=dict(img=img, img01=img01, mask=mask),
        outputs=detach(dict(main=rec.out['main'], pyramid=outs, aux=aux,
                            main_pred=main_pred, aux_pred=aux_pred,
                            target=target, loss=loss)))


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
    sys.path[:0] = [getattr(args, 'timm_' + timm.replace('.', '_')),
                    osp.join(repo_path, subdir)]
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
    parser.add_argument('--timm-0.6.12', dest='timm_0_6_12',
                        help='the same for timm 0.6.12 (SIM)')
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
        if args.timm_0_6_12:
            cmd += ['--timm-0.6.12', args.timm_0_6_12]
        subprocess.run(cmd, check=True)


if __name__ == '__main__':
    main()
