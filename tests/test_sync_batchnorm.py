"""PortableSyncBN: SIM's synchronised token BatchNorm under two CPU processes.

Two gloo processes with b images each must give the outputs, gradients and
running statistics of one process with BatchNorm over the 2b images.
"""
import os
import socket
import tempfile

import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
from mmengine.model import revert_sync_batchnorm

from mmpretrain.registry import MODELS

import mmmim  # noqa: F401  (registers the modules)

HEAD = dict(type='SiameseDenseHead', in_channels=16, embed_dims=16,
            grid_size=2, num_heads=2, projector_depth=2, predictor_depth=1)
BATCH, TOKENS = 3, 5  # per process


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _data():
    gen = torch.Generator().manual_seed(7)
    tokens = torch.randn(2 * BATCH, TOKENS, 16, generator=gen) * 3 + 1
    weights = torch.randn(2 * BATCH, TOKENS, 16, generator=gen)
    return tokens, weights


def _grads(module):
    return {n: p.grad.clone() for n, p in module.named_parameters()
            if p.grad is not None}


def _stats(module):
    return {n: b.clone() for n, b in module.named_buffers()
            if 'running' in n}


def _worker(rank, port, out_dir, state):
    torch.set_num_threads(1)
    torch_dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
        world_size=2)
    try:
        head = MODELS.build(dict(HEAD, norm_cfg=dict(type='PortableSyncBN')))
        head.load_state_dict(state)
        head.train()
        tokens, weights = _data()
        part = slice(rank * BATCH, (rank + 1) * BATCH)
        local = tokens[part].clone().requires_grad_()
        out = head.project(local)
        (out * weights[part]).sum().backward()
        torch.save(dict(out=out.detach(), token_grad=local.grad,
                        grads=_grads(head), stats=_stats(head)),
                   os.path.join(out_dir, f'{rank}.pth'))
    finally:
        torch_dist.destroy_process_group()


def test_two_processes_equal_one_process_with_the_whole_batch():
    torch.manual_seed(0)
    reference = MODELS.build(dict(HEAD, norm_cfg=dict(type='BN1d')))
    state = {k: v.clone() for k, v in reference.state_dict().items()}
    with tempfile.TemporaryDirectory() as out_dir:
        mp.start_processes(_worker, args=(_free_port(), out_dir, state),
                           nprocs=2, join=True, start_method='fork')
        res = [torch.load(os.path.join(out_dir, f'{r}.pth')) for r in (0, 1)]

    reference.train()
    tokens, weights = _data()
    tokens.requires_grad_()
    out = reference.project(tokens)
    (out * weights).sum().backward()

    torch.testing.assert_close(torch.cat([r['out'] for r in res]),
                               out.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat([r['token_grad'] for r in res]),
                               tokens.grad, rtol=1e-5, atol=1e-5)
    # DDP sums (then averages) the per-process gradients
    ref_grads = _grads(reference)
    assert any('bn.weight' in n for n in ref_grads)
    for name, grad in ref_grads.items():
        summed = res[0]['grads'][name] + res[1]['grads'][name]
        torch.testing.assert_close(summed, grad, rtol=1e-4, atol=1e-5,
                                   msg=name)
    ref_stats = _stats(reference)
    assert ref_stats
    for r in res:
        for name, value in ref_stats.items():
            torch.testing.assert_close(r['stats'][name], value, rtol=1e-5,
                                       atol=1e-6, msg=name)


def test_single_process_is_plain_batchnorm():
    torch.manual_seed(0)
    head = MODELS.build(dict(HEAD, norm_cfg=dict(type='PortableSyncBN')))
    bn = head.projector.blocks[0].norm1.bn
    assert isinstance(bn, torch.nn.SyncBatchNorm)
    # not distributed: torch's own path, identical to BatchNorm1d
    x = torch.randn(4, 16, 6)
    plain = torch.nn.BatchNorm1d(16)
    plain.load_state_dict(bn.state_dict())
    torch.testing.assert_close(bn(x), plain(x))
    # mmengine reverts it like any SyncBN in a non-distributed run
    reverted = revert_sync_batchnorm(head)
    assert not any(isinstance(m, torch.nn.SyncBatchNorm)
                   for m in reverted.modules())
