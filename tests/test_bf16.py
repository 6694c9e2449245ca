"""bf16 autocast pre-training works for every method: the loss is finite and
close to the fp32 loss of the same tiny model on the same batch."""
import pytest
import torch
from mmengine.dataset import default_collate, pseudo_collate
from mmengine.registry import init_default_scope

from mmpretrain.registry import DATASETS, MODELS

from .conftest import requires_fashion_mnist
from .test_exact_resume import TINY, tiny_config


def batch_and_model(method, tmp_path):
    cfg = tiny_config(method, tmp_path)
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    collate = (pseudo_collate if cfg.train_dataloader.collate_fn.get('type')
               == 'pseudo_collate' else default_collate)
    batch = collate([dataset[i] for i in range(4)])
    return model, model.data_preprocessor(batch, True)


@requires_fashion_mnist
@pytest.mark.parametrize('method', sorted(TINY))
def test_bf16_autocast_loss_close_to_fp32(method, tmp_path):
    model, data = batch_and_model(method, tmp_path)
    model.train()
    state = torch.get_rng_state()
    fp32 = model.parse_losses(model(**data, mode='loss'))[0]
    torch.set_rng_state(state)  # the same random draws (masks) in both runs
    with torch.autocast('cpu', dtype=torch.bfloat16):
        bf16 = model.parse_losses(model(**data, mode='loss'))[0]
    assert torch.isfinite(bf16)
    bf16.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert bf16.item() == pytest.approx(fp32.item(), rel=0.05, abs=1e-3)
