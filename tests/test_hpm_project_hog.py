"""projects/hpm_hog: its config builds through the registry (custom_imports,
no change to mmmim/) and one loss step computes the documented loss."""
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.structures import BaseDataElement

from mmpretrain.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CFG = osp.join(ROOT, 'projects/hpm_hog/configs/'
               'hog-hpm_vit-tiny_fashion-mnist.py')


def build_tiny():
    cfg = Config.fromfile(CFG)  # runs custom_imports
    assert 'projects.hpm_hog.hpm_hog' in cfg.custom_imports.imports
    cfg.model.backbone.arch = dict(embed_dims=32, num_layers=1, num_heads=2,
                                   feedforward_channels=64)
    cfg.model.neck.update(embed_dim=32, decoder_embed_dim=16,
                          decoder_depth=1, decoder_num_heads=2)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def test_config_builds_and_one_loss_step():
    model = build_tiny()
    assert type(model).__name__ == 'HOGHardPatchPretrainer'
    hub = MessageHub.get_instance('test_hpm_hog')
    hub.update_info('iter', 599)
    hub.update_info('max_iters', 600)
    x = torch.randn(2, 3, 32, 32)
    # end of the ramp: M = 12 of 16 patches, K = 6 most textured masked
    mask = model.get_mask(x, None)
    assert (mask.sum(1) == 12).all()
    hard = model.patch_difficulty(x).topk(6, dim=1).indices
    assert mask.gather(1, hard).all()

    explicit = torch.zeros(2, 16, dtype=torch.bool)
    explicit[:, 4:] = True
    samples = [BaseDataElement(mask=m) for m in explicit]
    losses = model.loss(x, samples)
    assert set(losses) == {'loss_hog'}
    latent, ids = model.backbone(x, explicit)
    pred = model.neck(latent, ids)
    target = model.head.construct_target(x)
    assert target.shape == (2, 16, 108)
    expected = ((pred - target)**2).mean(-1)[explicit].mean()
    torch.testing.assert_close(losses['loss_hog'], expected)
    losses['loss_hog'].backward()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = model.neck.decoder_pred.weight.detach().clone()
    opt.step()
    assert not torch.equal(before, model.neck.decoder_pred.weight)
