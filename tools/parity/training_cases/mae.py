"""MAE: six steps of facebookresearch/mae's own training loop."""
import argparse

import torch

from make_fixtures import (MAE_DECODER_TINY, VIT_TINY, case, compact,
                           layer_norm_1e6, mask_with_counts, masking_noise,
                           perturb, randn, state_of)
from .common import (EPOCHS, ITERS_PER_EPOCH, BATCH_SIZE, StepRecorder,
                     batches, cpu_stand_ins, given_rand_sequence,
                     group_names, schedule)


@case('mae', '')
def mae_train():
    """MAE pre-training through ``engine_pretrain.train_one_epoch``:
    ``main_pretrain.py``'s optimiser (timm 0.3.2 ``add_weight_decay``, AdamW
    betas (0.9, 0.95), wd 0.05, lr = 1.5e-4 x 4096 / 256), its per-iteration
    warm-up + half-cosine (``util/lr_sched.py``), its loss scaler (disabled
    without a GPU: float32), norm_pix on; a chosen mask of 12 of 16 patches
    per image and step, drawn by the model's own ``random_masking``."""
    import engine_pretrain
    import timm.optim.optim_factory as optim_factory
    from models_mae import MaskedAutoencoderViT
    from util.misc import NativeScalerWithGradNormCount as NativeScaler
    cpu_stand_ins()
    kwargs = dict(**VIT_TINY, **MAE_DECODER_TINY)
    torch.manual_seed(0)
    model = perturb(MaskedAutoencoderViT(norm_layer=layer_norm_1e6(),
                                         norm_pix_loss=True, **kwargs), 1)
    initial = state_of(model)
    num = ITERS_PER_EPOCH * BATCH_SIZE
    img = randn(num, 3, 32, 32, seed=2)
    # the same samples every epoch, each with its own mask
    mask = mask_with_counts(num, 16, [12] * num, 3)
    loader = [(x, None) for x, in batches([img])]

    # main_pretrain.py:164-165 (lr rule, written for a total batch of 4096),
    # :178-180 (groups, optimiser), :182 (scaler)
    args = argparse.Namespace(accum_iter=1, blr=1.5e-4, min_lr=0.,
                              mask_ratio=0.75, **schedule())
    args.lr = args.blr * 4096 / 256
    param_groups = optim_factory.add_weight_decay(model, 0.05)
    optimizer = torch.optim.AdamW(param_groups, lr=args.lr, betas=(0.9, 0.95))
    loss_scaler = NativeScaler()

    steps = StepRecorder(model, optimizer)
    noise = [masking_noise(m) for m, in batches([mask])]
    for epoch in range(EPOCHS):
        with given_rand_sequence(noise):
            engine_pretrain.train_one_epoch(
                model, loader, optimizer, torch.device('cpu'), epoch,
                loss_scaler, log_writer=None, args=args)
    steps.remove()
    return dict(
        meta=dict(builder='models_mae.py:MaskedAutoencoderViT', kwargs=kwargs,
                  norm_eps=1e-6, norm_pix_loss=True,
                  loop='engine_pretrain.py:train_one_epoch',
                  schedule=schedule(lr=args.lr, min_lr=args.min_lr),
                  groups=group_names(model, optimizer)),
        state_dict=initial,
        inputs=compact(dict(img=img, mask=mask)),
        outputs=dict(**steps.result(), final_state_dict=model.state_dict()))
