"""SIM converter: a synthetic checkpoint with the reference's key names (tiny
sizes) converts completely, loads strictly, round-trips, and gives the loss a
reference-style forward computes from the same weights."""
import importlib.util
import math
import os
import re

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.models.vision_transformer import Block

from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from .conftest import official_shapes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location(
    'sim_to_mmmim',
    os.path.join(REPO, 'tools/model_converters/sim_to_mmmim.py'))
sim_to_mmmim = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sim_to_mmmim)

D, DEPTH, HEADS, PROJ, PRED, IMG, PATCH = 32, 2, 2, 2, 2, 32, 8
G = IMG // PATCH
TINY = dict(
    type='SIMPretrainer',
    backbone=dict(
        type='MaskedViT',
        arch=dict(embed_dims=D, num_layers=DEPTH, num_heads=HEADS,
                  feedforward_channels=4 * D),
        img_size=IMG, patch_size=PATCH, mask_mode='drop', sincos_layout='yx',
        frozen_patch_embed=True, final_norm=False),
    head=dict(type='SiameseDenseHead', in_channels=D, embed_dims=D,
              grid_size=G, num_heads=HEADS, projector_depth=PROJ,
              predictor_depth=PRED))


def _reference_keys():
    """The reference key list (tests/data/official_keys)."""
    return list(official_shapes('sim_vit_base_patch16').items())


def _tiny_shape(shape):
    dims = {768: D, 2304: 3 * D, 3072: 4 * D, 1536: 2 * D, 197: G * G + 1}
    shape = tuple(dims.get(s, s) for s in shape)
    if len(shape) == 4:  # patch embedding conv
        shape = shape[:2] + (PATCH, PATCH)
    return shape


def synthetic_reference_state_dict(seed=0):
    gen = torch.Generator().manual_seed(seed)
    limits = dict(blocks=DEPTH, projector_decoder_blocks=PROJ,
                  predictor_decoder_blocks=PRED)
    sd = {}
    for key, shape in _reference_keys():
        m = re.match(r'(?:mm_)?(blocks|projector_decoder_blocks|'
                     r'predictor_decoder_blocks)\.(\d+)\.', key)
        if m and int(m.group(2)) >= limits[m.group(1)]:
            continue
        shape = _tiny_shape(shape)
        if key.endswith('num_batches_tracked'):
            sd[key] = torch.tensor(5)
        elif key.endswith('running_var'):
            sd[key] = torch.rand(shape, generator=gen) + .5
        else:
            sd[key] = torch.randn(shape, generator=gen) * .2
    return sd


class PermuteBN(nn.Module):

    def __init__(self, dim, **kwargs):
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)

    def forward(self, x):
        return self.bn(x.permute(0, 2, 1).float()).permute(0, 2, 1)


class ReferenceSIM(nn.Module):
    """The reference model's forward_sim, written from the reference code with
    the reference's parameter names (timm blocks)."""

    def __init__(self):
        super().__init__()
        ln = lambda d, **kw: nn.LayerNorm(d, eps=1e-6)  # noqa: E731
        blk = lambda n: nn.ModuleList(  # noqa: E731
            [Block(D, HEADS, 4., qkv_bias=True, norm_layer=ln)
             for _ in range(n)])
        bnblk = lambda n: nn.ModuleList(  # noqa: E731
            [Block(D, HEADS, 4., qkv_bias=True, norm_layer=PermuteBN)
             for _ in range(n)])
        for p in ('', 'mm_'):
            setattr(self, p + 'patch_embed', nn.Module())
            getattr(self, p + 'patch_embed').proj = nn.Conv2d(
                3, D, PATCH, PATCH)
            setattr(self, p + 'cls_token', nn.Parameter(torch.zeros(1, 1, D)))
            setattr(self, p + 'mask_token', nn.Parameter(torch.zeros(1, 1, D)))
            setattr(self, p + 'blocks', blk(DEPTH))
            setattr(self, p + 'decoder_embed', nn.Linear(D, D))
            setattr(self, p + 'projector_decoder_blocks', bnblk(PROJ))
        self.pos_embed = nn.Parameter(torch.zeros(1, G * G + 1, D))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, G * G + 1, D))
        self.decoder_pos_mlp = nn.Linear(2 * D, D)
        self.predictor_decoder_blocks = bnblk(PRED)
        self.decoder_pred = nn.Linear(D, D)

    def mm_update(self, mm):
        for a, b in (('patch_embed', 'mm_patch_embed'),
                     ('blocks', 'mm_blocks'),
                     ('decoder_embed', 'mm_decoder_embed'),
                     ('projector_decoder_blocks',
                      'mm_projector_decoder_blocks')):
            for q, k in zip(getattr(self, a).parameters(),
                            getattr(self, b).parameters()):
                k.data = k.data * mm + q.data * (1. - mm)
        for a in ('cls_token', 'mask_token'):
            k = getattr(self, 'mm_' + a)
            k.data = k.data * mm + getattr(self, a).data * (1. - mm)

    @staticmethod
    def rel_embed(di, dj, dh, dw, flip, dj_flip):
        di, dj, dj_flip = di * G, dj * G, dj_flip * G
        gh, gw = torch.meshgrid(torch.arange(G, dtype=torch.float64) + .5,
                                torch.arange(G, dtype=torch.float64) + .5,
                                indexing='ij')
        gh = dh[:, None] * gh.flatten() + di[:, None]
        gw_n = dw[:, None] * gw.flatten() + dj[:, None]
        gw_f = -dw[:, None] * gw.flatten() + dj_flip[:, None]
        f = flip.double()[:, None]
        gw = f * gw_f + (1 - f) * gw_n - .5
        gh = gh - .5
        omega = 1. / 10000**(torch.arange(D // 4, dtype=torch.float64) /
                             (D / 4))
        oh, ow = gh[..., None] * omega, gw[..., None] * omega
        sh = (10 * torch.log(dh))[:, None] * omega
        sw = (10 * torch.log(dw))[:, None] * omega
        sh = sh[:, None].expand(-1, G * G, -1)
        sw = sw[:, None].expand(-1, G * G, -1)
        return torch.cat([oh.sin(), oh.cos(), ow.sin(), ow.cos(), sh.sin(),
                          sh.cos(), sw.sin(), sw.cos()], dim=2).float()

    def forward(self, x1, x2, rel, mm, mask):
        B = x1.shape[0]
        x = self.patch_embed.proj(x1).flatten(2).transpose(1, 2)
        x = x + self.pos_embed[:, 1:]
        x = x[~mask].view(B, -1, D)
        cls = self.cls_token.expand(B, -1, -1) + self.pos_embed[:, :1]
        x = torch.cat([cls, x], 1)
        for b in self.blocks:
            x = b(x)
        x = self.decoder_embed(x)
        for b in self.projector_decoder_blocks:
            x = b(x)
        vis = self.decoder_pos_embed[:, 1:].repeat(B, 1, 1)[~mask].view(
            B, -1, D)
        x2e = self.decoder_pos_mlp(self.rel_embed(*rel))
        x = torch.cat([x[:, :1] + self.decoder_pos_embed[:, :1],
                       x[:, 1:] + vis,
                       self.mask_token.repeat(B, G * G, 1) + x2e], 1)
        for b in self.predictor_decoder_blocks:
            x = b(x)
        pred = self.decoder_pred(x)[:, -G * G:]
        with torch.no_grad():
            self.mm_update(mm)
            t = self.mm_patch_embed.proj(x2).flatten(2).transpose(1, 2)
            t = torch.cat([self.mm_cls_token.expand(B, -1, -1), t], 1)
            t = t + self.pos_embed
            for b in self.mm_blocks:
                t = b(t)
            t = self.mm_decoder_embed(t)
            for b in self.mm_projector_decoder_blocks:
                t = b(t)
            t = F.layer_norm(t[:, 1:], (D, ), eps=1e-5)
        p, t = pred.reshape(-1, D), t.reshape(-1, D)
        pos = ((p - t)**2).sum(-1).mean()
        corr = t.T @ t / t.shape[0]
        neg = torch.diagonal(p @ corr @ p.T).mean()
        return (pos + 0.02 * neg) / D


def test_every_reference_key_is_converted_and_loads_strictly():
    sd = synthetic_reference_state_dict()
    model = MODELS.build(TINY)
    converted = sim_to_mmmim.convert_sim(sd, model)
    assert len(converted) == len(sd) == len(model.state_dict())
    result = model.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    # values land where they belong
    torch.testing.assert_close(
        model.backbone.layers[1].ffn.layers[0][0].weight,
        sd['blocks.1.mlp.fc1.weight'])
    torch.testing.assert_close(
        model.momentum_branch.projector.blocks[1].norm2.bn.running_var,
        sd['mm_projector_decoder_blocks.1.norm2.bn.running_var'])
    torch.testing.assert_close(model.head.predictor.rel_pos_proj.weight,
                               sd['decoder_pos_mlp.weight'])
    # the same table converts back to the reference names
    back = sim_to_mmmim.SIM_KEYMAP.convert(converted, to_mmmim=False)
    assert back.keys() == sd.keys()


def test_unknown_missing_and_misshaped_keys_fail_loudly():
    model = MODELS.build(TINY)
    sd = synthetic_reference_state_dict()
    with pytest.raises(KeyError, match='student_norm'):
        sim_to_mmmim.convert_sim({**sd, 'student_norm.weight': torch.ones(D)},
                                 model)
    missing = dict(sd)
    del missing['mm_blocks.0.attn.qkv.bias']
    with pytest.raises(ValueError, match='missing'):
        sim_to_mmmim.convert_sim(missing, model)
    bad = dict(sd)
    bad['decoder_pos_mlp.weight'] = torch.zeros(D, D)
    with pytest.raises(ValueError, match='shape mismatch'):
        sim_to_mmmim.convert_sim(bad, model)


def test_converted_model_reproduces_reference_forward():
    sd = synthetic_reference_state_dict(seed=1)
    ref = ReferenceSIM()
    ref.load_state_dict(sd, strict=True)
    model = MODELS.build(TINY)
    model.load_state_dict(sim_to_mmmim.convert_sim(sd, model), strict=True)
    ref.train()
    model.train()

    B = 4
    rng = np.random.default_rng(0)
    x1, x2 = torch.randn(B, 3, IMG, IMG), torch.randn(B, 3, IMG, IMG)
    boxes = np.stack([np.array([[3, 5, 60, 70], [10, 2, 50, 90]]) + b
                      for b in range(B)]).astype(np.float32)
    flips = rng.random((B, 2)) < .5
    masks = np.zeros((B, G * G), bool)
    for b in range(B):
        masks[b, rng.permutation(G * G)[:10]] = True
    samples = []
    for b in range(B):
        s = DataSample()
        s.set_mask(masks[b].reshape(G, G).astype(int))
        s.set_field(boxes[b], 'crop_boxes')
        s.set_field(flips[b], 'flips')
        s.set_field(120, 'img_width')
        samples.append(s)
    bx = torch.from_numpy(boxes).double()
    f = torch.from_numpy(flips)
    rel = ((bx[:, 1, 0] - bx[:, 0, 0]) / bx[:, 0, 2],
           (bx[:, 1, 1] - bx[:, 0, 1]) / bx[:, 0, 3],
           bx[:, 1, 2] / bx[:, 0, 2], bx[:, 1, 3] / bx[:, 0, 3],
           f[:, 0] ^ f[:, 1],
           (120 - bx[:, 0, 1] - bx[:, 1, 1]) / bx[:, 0, 3])

    model.momentum = 0.9
    loss = model.loss([x1, x2], samples)['loss']
    ref_loss = ref(x1, x2, rel, 0.9, torch.from_numpy(masks))
    assert math.isfinite(loss.item())
    torch.testing.assert_close(loss, ref_loss, rtol=1e-4, atol=0)
    # the EMA step moved the same momentum parameters the same way
    after = sim_to_mmmim.SIM_KEYMAP.convert(model.state_dict(),
                                            to_mmmim=False)
    for key, value in ref.state_dict().items():
        if key.startswith('mm_') and 'running' not in key:
            torch.testing.assert_close(after[key], value, rtol=1e-5,
                                       atol=1e-6, msg=key)
