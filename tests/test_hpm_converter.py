"""HPM converter: a reference-layout model (timm blocks, the reference's key
names) at tiny size -> mmmim; every key loads and outputs / losses match."""
import importlib.util
import os.path as osp
from functools import partial

import pytest
import torch
import torch.nn as nn
from mmengine.structures import BaseDataElement
from timm.layers import PatchEmbed
from timm.models.vision_transformer import Block

from mmpretrain.registry import MODELS
from mmmim.models.losses.hpm_losses import relative_ranking_loss
from mmmim.utils import build_model_from_config

from .conftest import official_shapes
from .test_hpm import DEC, DIM, IMG, PATCH, L, tiny_hpm_cfg

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_converter():
    path = osp.join(ROOT, 'tools/model_converters/hpm_to_mmmim.py')
    spec = importlib.util.spec_from_file_location('hpm_to_mmmim', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


conv = load_converter()


class RefHPM(nn.Module):
    """The reference HPM model's layout and forward (HPM models_mae.py)."""

    def __init__(self, img=IMG, p=PATCH, dim=DIM, depth=1, heads=2, ddim=DEC,
                 ddepth=1, dheads=2, mlp=2.):
        super().__init__()
        norm = partial(nn.LayerNorm, eps=1e-6)
        num = (img // p)**2
        self.patch_embed = PatchEmbed(img, p, 3, dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * .02)
        self.pos_embed = nn.Parameter(torch.randn(1, num + 1, dim) * .02,
                                      requires_grad=False)
        self.blocks = nn.ModuleList(
            [Block(dim, heads, mlp, qkv_bias=True, norm_layer=norm)
             for _ in range(depth)])
        self.norm = norm(dim)
        self.decoder_embed = nn.Linear(dim, ddim)
        self.mask_token = nn.Parameter(torch.randn(1, 1, ddim) * .02)
        self.decoder_pos_embed = nn.Parameter(
            torch.randn(1, num + 1, ddim) * .02, requires_grad=False)

        def decoder():
            return nn.ModuleList(
                [Block(ddim, dheads, 4., qkv_bias=True, norm_layer=norm)
                 for _ in range(ddepth)])

        self.decoder_blocks = decoder()
        self.decoder_norm = norm(ddim)
        self.decoder_pred = nn.Linear(ddim, p * p * 3)
        self.decoder_blocks_losspred = decoder()
        self.decoder_norm_losspred = norm(ddim)
        self.decoder_pred_losspred = nn.Linear(ddim, p * p * 3)
        for m in self.modules():  # non-trivial norms
            if isinstance(m, nn.LayerNorm):
                nn.init.normal_(m.weight, 1., .2)
                nn.init.normal_(m.bias, 0., .2)

    def forward(self, imgs, mask):
        """Outputs in the reference order [visible, masked] (raster each)."""
        B = imgs.shape[0]
        x = self.patch_embed(imgs) + self.pos_embed[:, 1:]
        x = x[~mask].reshape(B, -1, x.shape[-1])
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(B, -1, -1)
        x = torch.cat([cls, x], 1)
        for blk in self.blocks:
            x = blk(x)
        x = self.decoder_embed(self.norm(x))
        D = x.shape[-1]
        pos = self.decoder_pos_embed[:, 1:].expand(B, -1, -1)
        x_ = torch.cat([
            x[:, 1:] + pos[~mask].reshape(B, -1, D),
            self.mask_token + pos[mask].reshape(B, -1, D)
        ], 1)
        x = torch.cat([x[:, :1] + self.decoder_pos_embed[:, :1], x_], 1)
        lp = x
        for blk in self.decoder_blocks:
            x = blk(x)
        rec = self.decoder_pred(self.decoder_norm(x))[:, 1:]
        for blk in self.decoder_blocks_losspred:
            lp = blk(lp)
        lp = self.decoder_pred_losspred(self.decoder_norm_losspred(lp))
        return rec, lp[:, 1:].mean(-1)


def patchify(imgs, p=PATCH):
    B, C, H, W = imgs.shape
    x = imgs.reshape(B, C, H // p, p, W // p, p)
    return torch.einsum('nchpwq->nhwpqc', x).reshape(B, -1, p * p * C)


def test_reference_layout_matches_official_keys():
    with torch.device('meta'):
        ref = RefHPM(224, 16, 768, 12, 12, 512, 8, 16, mlp=4.)
    official = official_shapes('hpm_vit_base_patch16_dec512d8b')
    assert {k: tuple(v.shape) for k, v in ref.state_dict().items()} == \
        official
    # and every official key maps onto the mmmim base config
    state = {k: torch.empty(s, device='meta') for k, s in official.items()}
    out = conv.convert_hpm(
        dict(state_dict={'module.' + k: v for k, v in state.items()},
             ema_state_dict=state),
        build_model_from_config(
            osp.join(ROOT, 'configs/hpm/hpm-vit-base_pixel_800e.py'),
            device='meta'))
    assert len(out['state_dict']) == 2 * len(official)


def make_checkpoint(tmp_path):
    torch.manual_seed(3)
    student, ema = RefHPM(), RefHPM()
    ckpt = dict(
        state_dict={'module.' + k: v for k, v in student.state_dict().items()},
        ema_state_dict=ema.state_dict(),
        epoch=7)
    path = tmp_path / 'hpm_ref.pth'
    torch.save(ckpt, path)
    return student, ema, ckpt, path


def test_converted_student_and_teacher_match_reference(tmp_path):
    student, ema, ckpt, _ = make_checkpoint(tmp_path)
    model = MODELS.build(tiny_hpm_cfg())
    out = conv.convert_hpm(ckpt, model)
    result = model.load_state_dict(out['state_dict'], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    # every tensor landed (nothing left at init values)
    sd = model.state_dict()
    assert torch.equal(sd['loss_predictor.pred.weight'],
                       student.decoder_pred_losspred.weight)
    assert torch.equal(
        sd['target_generator.teacher.backbone.layers.0.ffn.layers.1.bias'],
        ema.blocks[0].mlp.fc2.bias)

    x = torch.randn(2, 3, IMG, IMG)
    mask = torch.zeros(2, L, dtype=torch.bool)
    mask[0, [0, 2, 3, 5, 6, 7, 8, 9, 11, 12, 13, 15]] = True
    mask[1, [1, 2, 3, 4, 6, 7, 8, 10, 11, 12, 14, 15]] = True
    with torch.no_grad():
        rec_ref, lp_ref = student(x, mask)
        latent, ids = model.backbone(x, mask)
        tokens = model.neck.embed_tokens(latent, ids)
        rec = model.neck.decode(tokens)
        lp = model.loss_predictor(tokens)
    V = L - 12
    kw = dict(rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(rec[mask].view(2, 12, -1), rec_ref[:, V:],
                               **kw)
    torch.testing.assert_close(rec[~mask].view(2, V, -1), rec_ref[:, :V],
                               **kw)
    torch.testing.assert_close(lp[mask].view(2, 12), lp_ref[:, V:], **kw)

    # losses with the same explicit mask
    target = patchify(x)[mask].view(2, 12, -1)
    per_patch = ((rec_ref[:, V:] - target)**2).mean(-1)
    with torch.no_grad():
        losses = model.loss(x, [BaseDataElement(mask=m) for m in mask])
    assert losses['loss_rec'].item() == pytest.approx(
        per_patch.mean().item(), rel=1e-4)
    assert losses['loss_pred'].item() == pytest.approx(
        relative_ranking_loss(lp_ref[:, V:], per_patch).item(), rel=1e-4)

    # teacher = reference EMA model on the fully visible image
    with torch.no_grad():
        _, lp_ema = ema(x, torch.zeros(2, L, dtype=torch.bool))
        scores, feats = model.target_generator(x)
    torch.testing.assert_close(scores, lp_ema, **kw)


def test_converter_cli_and_loud_failures(tmp_path):
    _, _, ckpt, path = make_checkpoint(tmp_path)
    cfg_path = tmp_path / 'tiny_hpm.py'
    cfg_path.write_text(f'model = {tiny_hpm_cfg()!r}\n')
    dst = tmp_path / 'converted.pth'
    conv.main([str(path), str(dst), '--config', str(cfg_path)])
    out = torch.load(dst, map_location='cpu', weights_only=True)
    n = len(RefHPM().state_dict())
    assert len(out['state_dict']) == 2 * n

    model = MODELS.build(tiny_hpm_cfg())
    bad = dict(ckpt, state_dict=dict(ckpt['state_dict'],
                                     **{'module.head.fc.weight': torch.ones(1)}))
    with pytest.raises(KeyError, match='head.fc.weight'):
        conv.convert_hpm(bad, model)
    no_ema = {k: v for k, v in ckpt.items() if k != 'ema_state_dict'}
    with pytest.raises(KeyError, match='ema_state_dict'):
        conv.convert_hpm(no_ema, model)
    filled = conv.convert_hpm(no_ema, model, allow_missing_ema=True)
    assert len(filled['state_dict']) == 2 * n
    missing = dict(ckpt)
    missing['state_dict'] = {k: v for k, v in ckpt['state_dict'].items()
                             if 'decoder_norm_losspred' not in k}
    missing['ema_state_dict'] = {k: v for k, v in
                                 ckpt['ema_state_dict'].items()
                                 if 'decoder_norm_losspred' not in k}
    with pytest.raises(ValueError, match='missing'):
        conv.convert_hpm(missing, model)
    wrong = dict(ckpt)
    wrong['ema_state_dict'] = dict(ckpt['ema_state_dict'],
                                   cls_token=torch.zeros(1, 1, DIM + 1))
    with pytest.raises(ValueError, match='shape'):
        conv.convert_hpm(wrong, model)
