"""Two gloo processes with batch b each give the first-step loss and gradients
of one process with batch 2b (tiny MAE, explicit masks)."""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.model import MMDistributedDataParallel

from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

TINY_MAE = dict(
    type='MAEPretrainer',
    data_preprocessor=dict(type='SelfSupDataPreprocessor', mean=[127.5] * 3,
                           std=[50.] * 3),
    backbone=dict(type='MaskedViT',
                  arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                            feedforward_channels=64),
                  img_size=16, patch_size=4),
    neck=dict(type='MAEDecoder', num_patches=16, patch_size=4, embed_dim=32,
              decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2),
    head=dict(type='MAEPretrainHead', norm_pix=True, patch_size=4,
              loss=dict(type='PixelReconstructionLoss', criterion='L2')))


def make_model():
    import mmmim  # noqa: F401  (spawned processes register again)
    torch.manual_seed(0)
    model = MODELS.build(TINY_MAE)
    model.init_weights()
    return model


def make_batch(n=8):
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (n, 3, 16, 16), generator=g).float()
    samples = []
    for _ in range(n):
        sample = DataSample()
        mask = torch.zeros(16, dtype=torch.uint8)
        mask[torch.randperm(16, generator=g)[:12]] = 1
        sample.set_field(mask.view(4, 4), 'mask')
        samples.append(sample)
    return images, samples


def first_step(model, images, samples, wrap=None):
    """Loss and gradients of the first step (optimizer step not taken)."""
    trained = wrap(model) if wrap else model
    data = model.data_preprocessor(
        dict(inputs=images, data_samples=samples), True)
    losses = trained(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in model.named_parameters()
             if p.grad is not None}
    return loss.detach(), grads


def worker(rank, world_size, port, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    model = make_model()
    images, samples = make_batch()
    half = len(images) // world_size
    part = slice(rank * half, (rank + 1) * half)
    loss, grads = first_step(
        model, images[part], samples[part],
        wrap=lambda m: MMDistributedDataParallel(module=m, device_ids=None))
    # the logged loss of a DDP run is the mean over processes
    dist.all_reduce(loss)
    loss /= world_size
    if rank == 0:
        torch.save(dict(loss=loss, grads=grads), os.path.join(out_dir,
                                                              'ddp.pth'))
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process_with_double_batch(tmp_path):
    mp.spawn(worker, args=(2, free_port(), str(tmp_path)), nprocs=2,
             join=True)
    ddp = torch.load(tmp_path / 'ddp.pth')

    model = make_model()
    images, samples = make_batch()
    loss, grads = first_step(model, images, samples)
    torch.testing.assert_close(ddp['loss'], loss, rtol=1e-5, atol=1e-6)
    assert ddp['grads'].keys() == grads.keys() and len(grads) > 10
    for name, grad in grads.items():
        torch.testing.assert_close(ddp['grads'][name], grad, rtol=1e-5,
                                   atol=1e-7, msg=name)
