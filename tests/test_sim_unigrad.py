"""UniGrad loss: the formula, its gradient, the cross-process correlation."""
import os
import socket
import tempfile

import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp

from mmmim.models.losses import UniGradLoss


def _formula(pred, target, lam):
    """UniGrad written out in float64 with explicit sums."""
    p, t = pred.double(), target.double()
    n, d = p.shape
    pos = sum(((p[k] - t[k])**2).sum() for k in range(n)) / n
    corr = sum(torch.outer(t[k], t[k]) for k in range(n)) / n
    neg = sum(p[k] @ corr @ p[k] for k in range(n)) / n
    return (pos + lam * neg) / d


def test_dense_matches_formula():
    pred, target = torch.randn(2, 10, 8), torch.randn(2, 10, 8)
    loss = UniGradLoss(neg_weight=0.02)(pred, target)
    expected = _formula(pred.reshape(-1, 8), target.reshape(-1, 8), 0.02)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), expected, rtol=1e-6, atol=0)


def test_global_matches_formula_on_image_means():
    pred, target = torch.randn(4, 10, 8), torch.randn(4, 10, 8)
    loss = UniGradLoss(neg_weight=0.5, mode='global')(pred, target)
    expected = _formula(pred.mean(1), target.mean(1), 0.5)
    torch.testing.assert_close(loss.double(), expected, rtol=1e-6, atol=0)


def test_gradient_treats_correlation_as_constant():
    pred = torch.randn(12, 6, requires_grad=True)
    target = torch.randn(12, 6, requires_grad=True)
    UniGradLoss(neg_weight=0.1)(pred, target).backward()
    corr = target.detach().T @ target.detach() / 12
    expected = (2 * (pred.detach() - target.detach()) +
                2 * 0.1 * pred.detach() @ corr) / (12 * 6)
    torch.testing.assert_close(pred.grad, expected, rtol=1e-5, atol=1e-7)
    assert target.grad is None


def test_fp32_under_autocast():
    pred, target = torch.randn(20, 8), torch.randn(20, 8)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = UniGradLoss()(pred.bfloat16(), target.bfloat16())
    assert loss.dtype == torch.float32


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank, port, out_dir):
    torch.set_num_threads(1)
    torch_dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
        world_size=2)
    try:
        gen = torch.Generator().manual_seed(100 + rank)
        pred = torch.randn(6, 5, generator=gen)
        target = torch.randn(6, 5, generator=gen) * (rank + 1)
        loss_fn = UniGradLoss(neg_weight=0.02)
        corr = loss_fn.correlation(target)
        loss = loss_fn(pred, target)
        torch.save(dict(pred=pred, target=target, corr=corr, loss=loss),
                   os.path.join(out_dir, f'{rank}.pth'))
    finally:
        torch_dist.destroy_process_group()


def test_correlation_is_averaged_over_two_processes():
    with tempfile.TemporaryDirectory() as out_dir:
        # fork: the children reuse the parent's imports (spawn re-imports
        # torch and mmpretrain, tens of seconds on 2 cores)
        mp.start_processes(_worker, args=(_free_port(), out_dir), nprocs=2,
                           join=True, start_method='fork')
        res = [torch.load(os.path.join(out_dir, f'{r}.pth')) for r in (0, 1)]
    local = [r['target'].T @ r['target'] / 6 for r in res]
    mean_corr = (local[0] + local[1]) / 2
    assert not torch.allclose(local[0], local[1])
    for r in res:
        torch.testing.assert_close(r['corr'], mean_corr)
        p, t = r['pred'].double(), r['target'].double()
        pos = ((p - t)**2).sum(-1).mean()
        neg = ((p @ mean_corr.double()) * p).sum(-1).mean()
        torch.testing.assert_close(r['loss'].double(),
                                   (pos + 0.02 * neg) / 5, rtol=1e-6, atol=0)


def test_bad_arguments():
    with pytest.raises(ValueError):
        UniGradLoss(mode='patch')
    with pytest.raises(ValueError):
        UniGradLoss()(torch.randn(3, 4), torch.randn(3, 5))
