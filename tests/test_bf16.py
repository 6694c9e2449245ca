"""bf16 autocast pre-training works for every method, on the CPU and on a
GPU: the loss is finite and close to the fp32 loss of the same tiny model on
the same batch, and the optimiser step leaves finite parameters."""
import pytest
import torch
from mmengine.dataset import default_collate, pseudo_collate
from mmengine.registry import init_default_scope

from mmpretrain.registry import DATASETS, MODELS

from .conftest import DEVICES, requires_fashion_mnist
from .test_exact_resume import TINY, tiny_config


def batch_and_model(method, tmp_path, device='cpu'):
    cfg = tiny_config(method, tmp_path)
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.to(device)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    collate = (pseudo_collate if cfg.train_dataloader.collate_fn.get('type')
               == 'pseudo_collate' else default_collate)
    batch = collate([dataset[i] for i in range(4)])
    return model, model.data_preprocessor(batch, True)


@requires_fashion_mnist
@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('method', sorted(TINY))
def test_bf16_autocast_loss_close_to_fp32(method, device, tmp_path):
    model, data = batch_and_model(method, tmp_path, device)
    model.train()
    # the RNG state is restored after the fp32 run: both draw the same masks
    with torch.random.fork_rng(
            devices=[torch.cuda.current_device()] if device == 'cuda' else []):
        fp32 = model.parse_losses(model(**data, mode='loss'))[0]
    with torch.autocast(device, dtype=torch.bfloat16):
        bf16 = model.parse_losses(model(**data, mode='loss'))[0]
    assert torch.isfinite(bf16)
    bf16.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert bf16.item() == pytest.approx(fp32.item(), rel=0.05, abs=1e-3)
    params = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    torch.optim.AdamW(params, lr=1e-3).step()
    assert any(not torch.equal(b, p) for b, p in zip(before, params))
    assert all(torch.isfinite(p).all() for p in params)
