"""Run a function on several forked processes joined in one gloo group, as
``tools/dist_train.sh`` would on a CPU machine (same environment variables),
and collect what each returned or raised."""
import os
import pickle
import socket
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _child(target, rank, world_size, port, out_dir, args):
    torch.set_num_threads(1)  # before any op in the forked child
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world_size), MASTER_ADDR='127.0.0.1',
                      MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        outcome = ('returned', target(rank, *args))
    except BaseException as e:  # reported to the test, not raised here
        outcome = ('raised', f'{type(e).__name__}: {e}')
    with open(os.path.join(out_dir, f'{rank}.pkl'), 'wb') as f:
        pickle.dump(outcome, f)
    dist.destroy_process_group()


def run_ranks(target, *args, world_size=2, timeout=300):
    """``[(kind, value)]`` by rank: ``('returned', target(rank, *args))`` or
    ``('raised', 'Type: message')``. Fails the test if a rank hangs (all
    are killed after ``timeout`` seconds) or dies without reporting."""
    # fork: the children inherit the imported stack (spawn would re-import
    # torch and the OpenMMLab packages, 10+ s per process on 2 cores)
    ctx = mp.get_context('fork')
    port = free_port()
    with tempfile.TemporaryDirectory() as out_dir:
        procs = [ctx.Process(target=_child,
                             args=(target, rank, world_size, port, out_dir,
                                   args)) for rank in range(world_size)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=timeout)
        hung = [rank for rank, p in enumerate(procs) if p.is_alive()]
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
        assert not hung, f'ranks {hung} hung'
        outcomes = []
        for rank, p in enumerate(procs):
            path = os.path.join(out_dir, f'{rank}.pkl')
            assert os.path.isfile(path), \
                f'rank {rank} died with exit code {p.exitcode}'
            with open(path, 'rb') as f:
                outcomes.append(pickle.load(f))
    return outcomes
