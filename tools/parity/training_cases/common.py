"""What the training-loop cases share: a short schedule, fixed batches,
recording each step of a reference's own training loop.

A training case builds a small reference model as the forward cases do
(``make_fixtures.py``), builds its optimiser exactly as the reference's
``main_pretrain.py`` does (weight-decay groups, betas, lr rule) and runs the
reference's own ``train_one_epoch`` for ``EPOCHS`` epochs of
``ITERS_PER_EPOCH`` fixed batches: its per-iteration lr schedule (warm-up,
cosine), loss scaler / gradient clipping and EMA / momentum updates all run
as the reference wrote them. Each step's loss and lr and the final weights
are stored; ``tests/test_training_parity_*.py`` runs mmmim's Runner with the
method's config on the same batches and masks and compares.
"""
import contextlib

import torch

from make_fixtures import detach

#: a schedule short enough for a test, long enough to cross the warm-up
#: into the cosine: 1 warm-up epoch of 3, 2 iterations each (6 steps)
EPOCHS, WARMUP_EPOCHS, ITERS_PER_EPOCH, BATCH_SIZE = 3, 1, 2, 2


def schedule(**extra):
    return dict(epochs=EPOCHS, warmup_epochs=WARMUP_EPOCHS,
                iters_per_epoch=ITERS_PER_EPOCH, batch_size=BATCH_SIZE,
                **extra)


def cpu_stand_ins():
    """The reference loops call ``torch.cuda.synchronize()`` after every
    step; there is no GPU here. (``torch.cuda.amp`` autocast and GradScaler
    disable themselves without one: the loops run in float32.)"""
    torch.cuda.synchronize = lambda *args, **kwargs: None


@contextlib.contextmanager
def given_rand_sequence(noises):
    """Successive ``torch.rand`` calls of the noises' shape return the
    noises in turn, so that a reference's own random masking draws the
    chosen mask at every step (see ``make_fixtures.given_rand``)."""
    real, pending = torch.rand, list(noises)
    shape = tuple(pending[0].shape)

    def rand(*size, **kwargs):
        asked = size[0] if len(size) == 1 and not isinstance(size[0], int) \
            else size
        if tuple(asked) == shape:
            return pending.pop(0).clone()
        return real(*size, **kwargs)

    torch.rand = rand
    try:
        yield
    finally:
        torch.rand = real
    assert not pending, f'{len(pending)} masks were not drawn'


class StepRecorder:
    """Keeps, at every forward of ``model`` during training, the loss it
    returns (``loss_of(output)``) and the lr of every optimiser group (set
    by the reference's scheduler just before the forward)."""

    def __init__(self, model, optimizer, loss_of=lambda out: out[0]):
        self.losses, self.lrs = [], []
        self.optimizer, self.loss_of = optimizer, loss_of
        self.handle = model.register_forward_hook(self._hook)

    def _hook(self, module, args, output):
        if module.training:
            self.losses.append(self.loss_of(output).detach().clone())
            self.lrs.append([g['lr'] for g in self.optimizer.param_groups])

    def remove(self):
        self.handle.remove()

    def result(self):
        return dict(losses=torch.stack(self.losses),
                    lrs=torch.tensor(self.lrs, dtype=torch.float64))


class Recorded:
    """Calls ``fn`` (a reference function or the loop's loss scaler,
    unchanged) and keeps a copy of each call's arguments and result as they
    were then (HPM's loop adds its second loss term to the first in place,
    engine_pretrain.py:122)."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, *args, **kwargs):
        out = self.fn(*args, **kwargs)
        self.calls.append((detach(list(args)), detach(kwargs), detach(out)))
        return out

    @property
    def results(self):
        return [out for *_, out in self.calls]


def group_names(model, optimizer):
    """The optimiser's groups as the reference built them, by parameter
    name: ``[{'names': [...], 'weight_decay': wd, 'lr_scale': s}, ...]``."""
    names = {id(p): n for n, p in model.named_parameters()}
    return [dict(names=sorted(names[id(p)] for p in g['params']),
                 weight_decay=g['weight_decay'],
                 lr_scale=g.get('lr_scale', 1.0))
            for g in optimizer.param_groups]


def batches(tensors, num=ITERS_PER_EPOCH):
    """Split per-sample tensors into ``num`` consecutive batches."""
    return [tuple(t[i * BATCH_SIZE:(i + 1) * BATCH_SIZE] for t in tensors)
            for i in range(num)]
