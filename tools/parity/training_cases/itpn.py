"""iTPN pixel pre-training: six steps of sunsmarterjie/iTPN's own training
loop (``itpn_pixel``)."""
import argparse
from functools import partial

import torch

from make_fixtures import case, compact, mask_with_counts, masking_noise, \
    perturb, randn, state_of
from .common import (EPOCHS, ITERS_PER_EPOCH, BATCH_SIZE, StepRecorder,
                     batches, cpu_stand_ins, given_rand_sequence,
                     group_names, schedule)

#: the forward case's model (``make_fixtures.ITPN_TINY``) at half the
#: backbone and pyramid width, so that the initial (float16) and final
#: (float32) weights fit a small file; mlp_ratio, bridge_mlp_ratio, num_outs
#: and rpe as ``itpn_base_dec512d8b`` builds them
#: (models/models_itpn_mim.py:248-253). The decoder stays 32 wide: at 16 the
#: stride-4 level's embedding (to 16 / 16 = 1 channel per sub-patch) would
#: fill the 16 decoder channels with one output, whose bias (and its
#: LayerNorm's) then only shifts what the decoder LayerNorms remove: a
#: gradient of rounding noise
ITPN_TRAIN_TINY = dict(img_size=32, patch_size=8, embed_dim=32, mlp_depth=1,
                       depth=2, num_heads=2, fpn_dim=16, fpn_depth=1,
                       decoder_embed_dim=32, decoder_depth=1,
                       decoder_num_heads=2)


@case('iTPN', 'itpn_pixel')
def itpn_pixel_train():
    """iTPN pixel pre-training through ``engine_pretrain.train_one_epoch``:
    ``main_pretrain.py``'s optimiser (timm 0.3.2 ``add_weight_decay``
    without the model's ``no_weight_decay()`` list, so the learnable
    position table and the mask token are decayed; AdamW betas
    (0.9, 0.95), wd 0.05; lr = 1.5e-4 x 4096 / 256 as PRETRAIN.md runs it),
    its per-iteration warm-up + half-cosine (``util/lr_sched.py``), its loss
    scaler (disabled without a GPU: float32), norm_pix always on; a chosen
    mask of 12 of 16 patches per image and step, drawn by the model's own
    ``masking_id``. The stored table is resampled (bicubic, scale 4.1 / 4)
    at every step, as the reference's ``interpolate_pos_encoding`` does with
    dropped patches."""
    import engine_pretrain
    import timm.optim.optim_factory as optim_factory
    from models.models_itpn_mim import iTPNMaskedAutoencoder
    from util.misc import NativeScalerWithGradNormCount as NativeScaler
    cpu_stand_ins()
    kwargs = dict(ITPN_TRAIN_TINY)
    torch.manual_seed(0)
    # main_pretrain.py:155 passes norm_pix_loss, which the model ignores
    # (masked_autoencoder.py:15 sets it True)
    model = perturb(iTPNMaskedAutoencoder(
        bridge_mlp_ratio=3., mlp_ratio=4., num_outs=3, rpe=False,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), **kwargs), 1)
    initial = state_of(model)
    num = ITERS_PER_EPOCH * BATCH_SIZE
    img = randn(num, 3, 32, 32, seed=2)
    # the same samples every epoch, each with its own mask; mask_ratio 0.75
    # keeps int(16 x 0.25) = 4 patches (models_itpn_mim.py:195)
    mask = mask_with_counts(num, 16, [12] * num, 3)
    loader = [(x, None) for x, in batches([img])]

    # main_pretrain.py:164-165 (lr rule; PRETRAIN.md:8-14: --blr 1.5e-4,
    # 64 GPUs x --batch_size 64 = 4096, --mask_ratio 0.75), :178-179
    # (add_weight_decay(model_without_ddp, args.weight_decay): no skip
    # list; AdamW betas), :181 (scaler); wd default :57
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
        meta=dict(builder='itpn_pixel/models/models_itpn_mim.py:'
                  'iTPNMaskedAutoencoder', kwargs=kwargs, norm_eps=1e-6,
                  rpe=False, norm_pix_loss=True,
                  loop='itpn_pixel/engine_pretrain.py:train_one_epoch',
                  schedule=schedule(lr=args.lr, min_lr=args.min_lr),
                  groups=group_names(model, optimizer)),
        state_dict=initial,
        inputs=compact(dict(img=img, mask=mask)),
        outputs=dict(**steps.result(), final_state_dict=model.state_dict()))
