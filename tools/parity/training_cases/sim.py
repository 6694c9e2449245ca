"""SIM: six steps of OpenGVLab/Siamese-Image-Modeling's own training loop,
its momentum branch updated before every target pass."""
import argparse
import os
import random
import tempfile

import torch

from make_fixtures import case, compact, perturb, randn, state_of
from .common import (EPOCHS, ITERS_PER_EPOCH, BATCH_SIZE, Recorded,
                     StepRecorder, cpu_stand_ins, group_names, schedule)

#: half the width of the forward case's model (``make_fixtures.sim``), so
#: that the initial (float16) and final (float32) online and momentum
#: weights fit a small file
SIM_TRAIN_TINY = dict(img_size=32, patch_size=8, embed_dim=32, depth=2,
                      num_heads=2, decoder_depth=1, decoder_num_heads=2,
                      mlp_ratio=2)
SIM_TRAIN_ARGS = dict(
    decoder_embed_dim=16, use_abs_pos_emb=True, drop_path_rate=0.,
    init_values=None, loss_type='sim', projector_depth=1, predictor_depth=1,
    use_proj_ln=False, use_pred_ln=False, online_ln=False,
    train_patch_embed=False, with_blockwise_mask=True, neg_weight=0.02)

#: the source image's size, in which the crop boxes lie
IMG_HEIGHT, IMG_WIDTH = 80, 100
#: per sample (view 1, view 2): crop box (i, j, h, w) in the (flipped)
#: source image, and the flips; every combination of flips occurs
CROP_BOXES = [
    [[10, 20, 60, 50], [25, 5, 45, 80]],
    [[0, 30, 70, 64], [12, 14, 48, 40]],
    [[5, 0, 75, 100], [30, 40, 40, 36]],
    [[20, 10, 44, 60], [0, 22, 80, 70]],
]
FLIPS = [[False, True], [True, True], [False, False], [True, False]]
#: block-wise mask of view 1: 10 of 16 patches (the config's 118 / 196)
NUM_MASKED = 10


def block_masks(num, seed):
    """(num, 4, 4) masks of ``NUM_MASKED`` patches from the reference's own
    block-wise generator (util/datasets.py:73-79, min block 2 patches on the
    4 x 4 grid instead of 16 on 14 x 14), python ``random`` seeded."""
    from util.masking_generator import MaskingGenerator
    generate = MaskingGenerator((4, 4), num_masking_patches=NUM_MASKED,
                                min_num_patches=2,
                                fixed_num_masking_patches=True)
    random.seed(seed)
    masks = [torch.from_numpy(generate().astype(bool)) for _ in range(num)]
    assert all(int(m.sum()) == NUM_MASKED for m in masks)
    return torch.stack(masks)


def relative_geometry(boxes, flips, W):
    """main_pretrain.py:189-191 (``DataAugmentationForSIM.__call__``), on the
    crop records as python numbers, as the reference's pipeline gives them
    to the loader's collate."""
    (i1, j1, h1, w1), (i2, j2, h2, w2) = boxes
    flip1, flip2 = flips
    relative_flip = (flip1 and not flip2) or (flip2 and not flip1)
    return ((i2 - i1) / h1, (j2 - j1) / w1, h2 / h1, w2 / w1, relative_flip,
            (W - j1 - j2) / w1)


def loader_batches(x1, x2, mask):
    """The reference loader's batches, ``(samples, labels, mask)`` with
    ``samples = (x1, x2, delta_i, delta_j, delta_h, delta_w, relative_flip,
    flip_delta_j)`` (util/datasets.py:81-85, engine_pretrain.py:46-47,64),
    collated by torch's ``default_collate`` as its DataLoader does."""
    from torch.utils.data import default_collate
    samples = [((x1[n], x2[n]) + relative_geometry(CROP_BOXES[n], FLIPS[n],
                                                   IMG_WIDTH),
                0, mask[n].numpy().astype(int))
               for n in range(len(x1))]
    return [default_collate(samples[b * BATCH_SIZE:(b + 1) * BATCH_SIZE])
            for b in range(ITERS_PER_EPOCH)]


@case('Siamese-Image-Modeling', '', timm='0.6')
def sim_train():
    """SIM pre-training through ``engine_pretrain.train_one_epoch``:
    ``main_pretrain.py``'s optimiser (timm ``param_groups_weight_decay``,
    AdamW betas (0.9, 0.95), wd 0.05, lr = 6.25e-5 x 4096 / 256), the
    per-iteration warm-up + half-cosine (``util/lr_sched.py``), the cosine
    momentum 0.995 -> 1 of the fractional epoch with the update before the
    target pass (``mmschedule='cosine'``), the loss scaler clipping the
    gradient norm at 1.0 (float32: ``--fp32``, as without a GPU); two views
    per sample with crop boxes and flips, the relative geometry as
    ``DataAugmentationForSIM`` computes it, the reference's own block-wise
    mask of 10 / 16 patches; a 1-process gloo group for the UniGrad
    all-reduce."""
    import torch.distributed as dist
    import engine_pretrain
    import util.misc as misc
    from functools import partial
    from timm.optim.optim_factory import param_groups_weight_decay
    from models_sim import SiameseIMViT
    from util.misc import LayerNorm
    from util.misc import NativeScalerWithGradNormCount as NativeScaler
    cpu_stand_ins()
    # models_sim.py:478-479: the UniGrad correlation is all-reduced
    store = tempfile.NamedTemporaryFile(delete=False)
    store.close()
    os.unlink(store.name)
    dist.init_process_group('gloo', init_method=f'file://{store.name}',
                            rank=0, world_size=1)
    # util/misc.py:47-58 puts the end-of-epoch meter counts on a GPU to sum
    # them over processes (logging only); one process has nothing to add
    misc.SmoothedValue.synchronize_between_processes = lambda self: None

    # configs/pretrain/dist_sim_base_1600ep.sh:29-34 (blr, wd, momentum and
    # its schedule, clip, loss); --fp32 (main_pretrain.py:145): without a GPU
    # the scaler is off, and with it off the loop reads no loss scale
    # (engine_pretrain.py:93-96)
    args = argparse.Namespace(
        accum_iter=1, blr=6.25e-5, min_lr=0., weight_decay=0.05, mm=0.995,
        mmschedule='cosine', clip_grad=1.0, beta2=0.95, fp32=True,
        amp_growth_interval=2000, **SIM_TRAIN_ARGS, **schedule())
    torch.manual_seed(0)
    model = SiameseIMViT(norm_layer=partial(LayerNorm, eps=1e-6), args=args,
                         **SIM_TRAIN_TINY)
    # online and momentum weights perturbed independently
    perturb(model, 1)
    initial = state_of(model)
    num = ITERS_PER_EPOCH * BATCH_SIZE
    x1 = randn(num, 3, 32, 32, seed=2)
    x2 = randn(num, 3, 32, 32, seed=12)
    mask = block_masks(num, seed=3)
    # the same samples every epoch
    loader = loader_batches(x1, x2, mask)

    # main_pretrain.py:278-280 (lr rule; configs/pretrain/
    # dist_sim_base_1600ep.sh:14,29: total batch 4096, --blr 6.25e-5),
    # :296-297 (groups, optimiser), :299 (scaler)
    args.lr = args.blr * 4096 / 256
    param_groups = param_groups_weight_decay(model, args.weight_decay)
    optimizer = torch.optim.AdamW(param_groups, lr=args.lr,
                                  betas=(0.9, args.beta2))
    loss_scaler = NativeScaler(enabled=not args.fp32,
                               growth_interval=args.amp_growth_interval)

    # recorded as the loop calls them: the momentum and update flag of
    # every forward, the gradient norm the scaler clipped, the momentum
    # parameters after the first update (the optimiser never touches them)
    momenta, updates, first_update = [], [], {}

    def momentum_of(module, call_args, output):
        momenta.append(call_args[3])
        updates.append(call_args[4])
        if not first_update:
            first_update.update({n: p.detach().clone() for n, p in
                                 module.named_parameters()
                                 if n.startswith('mm_')})

    handle = model.register_forward_hook(momentum_of)
    scaler = Recorded(loss_scaler)
    steps = StepRecorder(model, optimizer)
    for epoch in range(EPOCHS):
        engine_pretrain.train_one_epoch(
            model, loader, optimizer, torch.device('cpu'), epoch, scaler,
            log_writer=None, args=args)
    steps.remove()
    handle.remove()
    dist.destroy_process_group()
    assert all(updates) and len(momenta) == EPOCHS * ITERS_PER_EPOCH
    return dict(
        meta=dict(builder='models_sim.py:SiameseIMViT', kwargs=SIM_TRAIN_TINY,
                  args=SIM_TRAIN_ARGS, norm_eps=1e-6,
                  loop='engine_pretrain.py:train_one_epoch',
                  schedule=schedule(lr=args.lr, min_lr=args.min_lr,
                                    clip_grad=args.clip_grad,
                                    base_momentum=args.mm),
                  groups=group_names(model, optimizer),
                  img_width=IMG_WIDTH, img_height=IMG_HEIGHT),
        state_dict=initial,
        inputs=compact(dict(
            x1=x1, x2=x2, mask=mask,
            crop_boxes=torch.tensor(CROP_BOXES, dtype=torch.float32),
            flips=torch.tensor(FLIPS))),
        outputs=dict(
            **steps.result(),
            momentum=torch.tensor(momenta, dtype=torch.float64),
            grad_norm=torch.stack([torch.as_tensor(n).detach()
                                   for n in scaler.results]),
            momentum_after_first_update=first_update,
            final_state_dict=model.state_dict()))
