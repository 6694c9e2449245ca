"""HPM: six steps of Haochen-Wang409/HPM's own training loop, its EMA
teacher mining the hard patches at every step."""
import argparse

import torch

from make_fixtures import (case, compact, layer_norm_1e6, perturb, randn,
                           state_of)
from .common import (EPOCHS, ITERS_PER_EPOCH, BATCH_SIZE, Recorded,
                     StepRecorder, batches, cpu_stand_ins, group_names,
                     schedule)

#: half the width of the forward case's model (``make_fixtures.VIT_TINY``,
#: ``MAE_DECODER_TINY``), so that the initial (float16) and final student and
#: teacher (float32) weights fit a small file
HPM_TRAIN_TINY = dict(img_size=32, patch_size=8, embed_dim=32, depth=2,
                      num_heads=2, mlp_ratio=2., decoder_embed_dim=16,
                      decoder_depth=1, decoder_num_heads=2)

#: the inputs' scale: gradient norms of 4.6 to 6.1, about the reference's
#: clipping threshold (5, util/misc.py:256): steps 1 and 3 are not clipped,
#: the others are
IMAGE_SCALE = 30.


class OneProcessDDP(torch.nn.Module):
    """engine_pretrain.py:91,105 call ``model.module``: the model is the
    DistributedDataParallel wrapper of main_pretrain.py:249-251. With one
    process DDP averages each gradient over one replica, so this wrapper
    stands in for it (a real gloo group would make the loop's metric logger
    synchronise on a GPU, util/misc.py:47)."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


@case('HPM', '')
def hpm_train():
    """HPM pre-training through ``engine_pretrain.train_one_epoch`` for 3
    epochs (``args.epochs = 3``: the number of hard patches K = int(12 x
    (epoch + 1) / 3 x 0.5) = 2, 4, 6 ramps over them): ``main_pretrain.py``'s
    student (wrapped as by one-process DDP), its EMA teacher (timm 0.3.2
    ``ModelEma``, momentum 0.999 + epoch / 100 x 0.0009 set per epoch,
    updated after every step), the teacher's easy-to-hard mask from
    ``generate_mask`` at every step (np.random seeded 0), the relative
    loss-prediction loss added to the reconstruction loss (no norm_pix), its
    optimiser (timm 0.3.2 ``add_weight_decay``, AdamW betas (0.9, 0.95), wd
    0.05, lr = 1.5e-4 x 256 / 256), per-iteration warm-up + half-cosine
    (``util/lr_sched.py``) and loss scaler (disabled without a GPU: float32;
    its default gradient clipping at norm 5 stays on). Images x 30, so that
    the gradient norms straddle 5."""
    import numpy as np
    import engine_pretrain
    import timm.optim.optim_factory as optim_factory
    from timm.utils import ModelEma
    from models_mae_learn_loss import MaskedAutoencoderViT
    from util.misc import NativeScalerWithGradNormCount as NativeScaler
    cpu_stand_ins()
    kwargs = dict(**HPM_TRAIN_TINY, norm_pix_loss=False)
    # main_pretrain.py:140-142 (seeds)
    torch.manual_seed(0)
    np.random.seed(0)
    # main_pretrain.py:199-200 (vis_mask_ratio 0: its default, :74)
    model = perturb(MaskedAutoencoderViT(norm_layer=layer_norm_1e6(),
                                         vis_mask_ratio=0., **kwargs), 1)
    initial = state_of(model)
    num = ITERS_PER_EPOCH * BATCH_SIZE
    img = (randn(num, 3, 32, 32, seed=2) * IMAGE_SCALE).half().float()
    L = (32 // 8)**2
    # the pipeline's mask (MaskTransform): generate_mask replaces it
    # (engine_pretrain.py:68-72); its value does not matter
    loader = [((x, torch.zeros(len(x), L, dtype=torch.bool)), None)
              for x, in batches([img])]

    # main_pretrain.py's defaults and scripts/pretrain_base.sh:8,16
    # (--mask_ratio 0.75 --learning_loss --relative; learn_feature_loss
    # 'none', :80; weight decay 0.05, :90)
    args = argparse.Namespace(
        accum_iter=1, blr=1.5e-4, min_lr=0., mask_ratio=0.75,
        learning_loss=True, learn_feature_loss='none', relative=True,
        weight_decay=0.05, **schedule())
    # main_pretrain.py:233-236 (the teacher: a copy of the student before
    # DDP, decay 0.999 until train_one_epoch sets it)
    model_ema = ModelEma(model, decay=0.999, device='cpu', resume='')
    # main_pretrain.py:240-241 (lr rule; scripts/pretrain_base.sh:1,3,11:
    # 8 GPUs x 32 = 256, --blr 1.5e-4)
    args.lr = args.blr * 256 / 256
    # main_pretrain.py:249-251 (DDP; no device_ids on the CPU)
    ddp = OneProcessDDP(model)
    # main_pretrain.py:254-255 (groups, optimiser), :258 (scaler)
    param_groups = optim_factory.add_weight_decay(model, args.weight_decay)
    optimizer = torch.optim.AdamW(param_groups, lr=args.lr, betas=(0.9, 0.95))
    loss_scaler = NativeScaler()

    # recorded as the loop calls them: the teacher's mask and its input
    # (the teacher's predicted losses), both loss terms, the EMA momentum
    # of every update, the gradient norm the scaler clipped
    masks = Recorded(model_ema.ema.generate_mask)
    model_ema.ema.generate_mask = masks
    rec_loss = Recorded(model.forward_loss)
    model.forward_loss = rec_loss
    pred_loss = Recorded(model.forward_learning_loss)
    model.forward_learning_loss = pred_loss
    momenta = []
    ema_update = model_ema.update

    def update(m):
        momenta.append(model_ema.decay)
        return ema_update(m)

    model_ema.update = update
    scaler = Recorded(loss_scaler)
    # the lrs at every training forward (the losses are recorded above: the
    # loop computes them outside the forward)
    steps = StepRecorder(model, optimizer, loss_of=lambda out: torch.zeros(()))
    for epoch in range(EPOCHS):
        engine_pretrain.train_one_epoch(
            ddp, loader, optimizer, torch.device('cpu'), epoch, scaler,
            log_writer=None, args=args, model_ema=model_ema)
    steps.remove()

    steps_total = EPOCHS * ITERS_PER_EPOCH
    assert len(masks.calls) == len(rec_loss.calls) == len(momenta) == \
        steps_total
    scores = torch.stack([a[0] for a, _, _ in masks.calls])
    mask = torch.stack([out.bool() for _, _, out in masks.calls])
    # K as generate_mask computes it (models_mae_learn_loss.py:261-280)
    num_hard = [int((L - int(L * (1 - args.mask_ratio))) *
                    float((kw['epoch'] + 1) / kw['total_epoch']) * 0.5)
                for _, kw, _ in masks.calls]
    hard = [torch.argsort(s, dim=1)[:, L - k:] for s, k in
            zip(scores, num_hard)]
    for m, h in zip(mask, hard):
        assert m.gather(1, h).all(), 'a hard patch is not masked'
    return dict(
        meta=dict(builder='models_mae_learn_loss.py:MaskedAutoencoderViT',
                  kwargs=kwargs, norm_eps=1e-6, mask_ratio=args.mask_ratio,
                  loop='engine_pretrain.py:train_one_epoch',
                  schedule=schedule(lr=args.lr, min_lr=args.min_lr,
                                    clip_grad=5.),
                  ema='timm 0.3.2 utils/model_ema.py:ModelEma',
                  groups=group_names(model, optimizer),
                  num_hard=num_hard, image_scale=IMAGE_SCALE),
        state_dict=initial,
        inputs=compact(dict(img=img, mask=mask)),
        outputs=dict(
            lrs=steps.result()['lrs'],
            loss_rec=torch.stack([out['mean'] for *_, out in rec_loss.calls]),
            loss_pred=torch.stack([out for *_, out in pred_loss.calls]),
            grad_norm=torch.stack([out for *_, out in scaler.calls]),
            teacher_scores=scores,
            hard_patches=[h.sort(dim=1).values for h in hard],
            momentum=torch.tensor(momenta, dtype=torch.float64),
            final_state_dict=model.state_dict(),
            final_ema_state_dict=model_ema.ema.state_dict()))
