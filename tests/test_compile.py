"""The opt-in torch.compile path gives the eager losses and gradients."""
import torch

from mmpretrain.registry import MODELS

from .test_mae_simmim import TINY_ARCH, fixed_mask, samples_with


def tiny_mae_cfg(**kwargs):
    return dict(
        type='MAEPretrainer',
        backbone=dict(type='MaskedViT', arch=TINY_ARCH, img_size=32,
                      patch_size=8),
        neck=dict(type='MAEDecoder', num_patches=16, patch_size=8,
                  embed_dim=32, decoder_embed_dim=16, decoder_depth=1,
                  decoder_num_heads=2),
        head=dict(type='MAEPretrainHead', norm_pix=True, patch_size=8,
                  loss=dict(type='PixelReconstructionLoss', criterion='L2')),
        **kwargs)


def loss_and_grads(model, img, samples):
    loss = model.loss(img, samples)['loss']
    loss.backward()
    return loss.detach(), {k: p.grad.clone()
                           for k, p in model.named_parameters()
                           if p.grad is not None}


def test_compiled_modules_match_eager():
    torch.manual_seed(0)
    eager = MODELS.build(tiny_mae_cfg())
    eager.init_weights()
    compiled = MODELS.build(tiny_mae_cfg(compile=dict(backend='aot_eager')))
    compiled.load_state_dict(eager.state_dict())
    assert compiled.backbone._compiled_call_impl is None  # not yet
    compiled.compile_compute_modules()  # what the first train_step does
    # compiled in place: the parameter names are unchanged
    assert compiled.state_dict().keys() == eager.state_dict().keys()
    assert compiled.backbone._compiled_call_impl is not None
    assert compiled.neck._compiled_call_impl is not None

    img = torch.randn(2, 3, 32, 32)
    samples = samples_with(fixed_mask(2, 16, 12), 4)
    loss_e, grads_e = loss_and_grads(eager, img, samples)
    loss_c, grads_c = loss_and_grads(compiled, img, samples)
    torch.testing.assert_close(loss_c, loss_e, rtol=1e-5, atol=1e-6)
    assert grads_c.keys() == grads_e.keys()
    for name in grads_e:
        torch.testing.assert_close(grads_c[name], grads_e[name], rtol=1e-4,
                                   atol=1e-6, msg=name)
