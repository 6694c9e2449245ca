"""SimMIM: eight steps of microsoft/SimMIM's own training loop, twice."""
import contextlib
import logging
from functools import partial

import torch

from make_fixtures import (case, compact, mask_with_counts, perturb, randn,
                           state_of)
from .common import StepRecorder, batches, cpu_stand_ins, group_names

#: 4 epochs of 2 steps: a warm-up of 2 epochs (4 steps) and the x0.1
#: milestone at epoch 3 (step 6), both inside the run
EPOCHS, WARMUP_EPOCHS, MILESTONE, ITERS_PER_EPOCH, BATCH_SIZE = 4, 2, 3, 2, 2
#: the total batch the lr rule is written for (the yaml's recipe: 16 GPUs x
#: 128, README.md:119-120; mmmim's config: 8 x 256)
TOTAL_BATCH = 2048
YAML = 'configs/vit_base__800ep/simmim_pretrain__vit_base__img224__800ep.yaml'
#: the tiny encoder of the ``simmim`` forward case
TINY = dict(IMG_SIZE=32, PATCH_SIZE=8, EMBED_DIM=64, DEPTH=2, NUM_HEADS=2,
            MLP_RATIO=2)
#: the decoder's initial weights are scaled by this (after the usual
#: perturbation): the gradient norm is then 11 to 22 (about 1 without),
#: above the clip norm 5.0 at every step, so that the clipping (by a
#: different factor at each step) is part of the comparison
DECODER_GAIN = 10.


def simmim_config(warmup_epochs, milestones):
    """The yacs config ``main_simmim.py`` trains with: ``config.py``'s
    defaults, the ViT-B 800-epoch yaml merged in, then the tiny sizes, this
    schedule length, no drop path (its random draws), no apex (``O0``) and
    the lr rule of ``main_simmim.py:218-220`` (``x total batch / 512``)
    for the recipe's total batch."""
    from config import _C, _update_config_from_file
    config = _C.clone()
    _update_config_from_file(config, YAML)
    config.defrost()
    config.DATA.IMG_SIZE = TINY['IMG_SIZE']
    config.DATA.BATCH_SIZE = BATCH_SIZE
    for key in ('PATCH_SIZE', 'EMBED_DIM', 'DEPTH', 'NUM_HEADS', 'MLP_RATIO'):
        config.MODEL.VIT[key] = TINY[key]
    config.MODEL.DROP_PATH_RATE = 0.
    config.TRAIN.EPOCHS = EPOCHS
    config.TRAIN.WARMUP_EPOCHS = warmup_epochs
    config.TRAIN.LR_SCHEDULER.MULTISTEPS = list(milestones)
    config.AMP_OPT_LEVEL = 'O0'
    # main_simmim.py:218-220, 227-229
    config.TRAIN.BASE_LR = config.TRAIN.BASE_LR * TOTAL_BATCH / 512.0
    config.TRAIN.WARMUP_LR = config.TRAIN.WARMUP_LR * TOTAL_BATCH / 512.0
    config.TRAIN.MIN_LR = config.TRAIN.MIN_LR * TOTAL_BATCH / 512.0
    config.freeze()
    return config


def build_model(config):
    """``models/simmim.py:158-180`` (``build_simmim``'s ViT) with the
    decoder's stride equal to the tiny patch size (the reference fixes 16,
    the ViT-B patch size)."""
    from models.simmim import SimMIM, VisionTransformerForSimMIM
    vit = config.MODEL.VIT
    encoder = VisionTransformerForSimMIM(
        img_size=config.DATA.IMG_SIZE, patch_size=vit.PATCH_SIZE,
        in_chans=vit.IN_CHANS, num_classes=0, embed_dim=vit.EMBED_DIM,
        depth=vit.DEPTH, num_heads=vit.NUM_HEADS, mlp_ratio=vit.MLP_RATIO,
        qkv_bias=vit.QKV_BIAS, drop_rate=config.MODEL.DROP_RATE,
        drop_path_rate=config.MODEL.DROP_PATH_RATE,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        init_values=vit.INIT_VALUES, use_abs_pos_emb=vit.USE_APE,
        use_rel_pos_bias=vit.USE_RPB,
        use_shared_rel_pos_bias=vit.USE_SHARED_RPB,
        use_mean_pooling=vit.USE_MEAN_POOLING)
    return SimMIM(encoder=encoder, encoder_stride=vit.PATCH_SIZE)


@contextlib.contextmanager
def cpu_tensors_and_grad_norms(model, eps):
    """``train_one_epoch`` moves each batch with ``Tensor.cuda()``: here it
    stays on the CPU. The norm ``clip_grad_norm_`` returns (before
    clipping) is kept, to show that the clip acts; so are the elements
    whose first clipped gradient is below AdamW's ``eps``: their first step,
    ``lr g / (|g| + eps)``, is proportional to ``g`` there, so that rounding
    differences in ``g`` show in the weights (the test leaves them out)."""
    norms, below_eps = [], {}
    real_cuda, real_clip = torch.Tensor.cuda, torch.nn.utils.clip_grad_norm_

    def clip(*args, **kwargs):
        norm = real_clip(*args, **kwargs)
        if not norms:
            for name, p in model.named_parameters():
                small = (p.grad.abs() < eps).flatten().nonzero()[:, 0]
                if len(small):
                    below_eps[name] = small
        norms.append(float(norm))
        return norm

    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    torch.nn.utils.clip_grad_norm_ = clip
    try:
        yield norms, below_eps
    finally:
        torch.Tensor.cuda = real_cuda
        torch.nn.utils.clip_grad_norm_ = real_clip


def train(config, initial, loader):
    """``main_simmim.py``'s optimiser (:76), scheduler (:88) and epochs
    (:107-110, ``train_one_epoch``) from the ``initial`` weights."""
    import main_simmim
    from lr_scheduler import build_scheduler
    from optimizer import build_optimizer
    logger = logging.getLogger('simmim_train')
    # main_simmim.py:233 sets the module's logger in its __main__ block
    main_simmim.logger = logger
    model = build_model(config)
    model.load_state_dict(initial)
    optimizer = build_optimizer(config, model, logger, is_pretrain=True)
    lr_scheduler = build_scheduler(config, optimizer, len(loader))
    steps = StepRecorder(model, optimizer, loss_of=lambda loss: loss)
    with cpu_tensors_and_grad_norms(
            model, config.TRAIN.OPTIMIZER.EPS) as (norms, below_eps):
        for epoch in range(config.TRAIN.START_EPOCH, config.TRAIN.EPOCHS):
            main_simmim.train_one_epoch(config, model, loader, optimizer,
                                        epoch, lr_scheduler)
    steps.remove()
    return model, optimizer, dict(**steps.result(),
                                  grad_norms=torch.tensor(norms),
                                  first_grad_below_eps=below_eps)


@case('SimMIM', '')
def simmim_train():
    """SimMIM ViT pre-training through ``main_simmim.train_one_epoch``
    (float32: ``AMP_OPT_LEVEL`` O0, no apex), with ``config.py`` + the
    ViT-B 800-epoch yaml shrunk to the tiny model: ``build_optimizer``
    (decay for all but 1-D parameters, biases, ``pos_embed`` and
    ``cls_token``: the mask token and the shared bias table are decayed;
    AdamW (0.9, 0.999), eps 1e-8, wd 0.05), grad clip 5.0 (it clips at every
    step), lr 1e-4 x 2048 / 512. Run ``schedule``: ``build_scheduler``'s
    multistep schedule with a 2-epoch warm-up from 5e-7 x 2048 / 512 and
    x0.1 at epoch 3 of 4; run ``constant``: no warm-up, the milestone at the
    end (a constant lr). The batches carry their masks (10, 7, 9, 10 of 16
    patches), the same every epoch."""
    cpu_stand_ins()
    torch.manual_seed(0)
    config = simmim_config(WARMUP_EPOCHS, [MILESTONE])
    model = perturb(build_model(config), 1)
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.mul_(DECODER_GAIN)
    initial = state_of(model)
    start = {k: v.float() for k, v in initial.items()}
    num = ITERS_PER_EPOCH * BATCH_SIZE
    img = randn(num, 3, 32, 32, seed=2)
    grid = TINY['IMG_SIZE'] // TINY['PATCH_SIZE']
    mask = mask_with_counts(num, grid * grid, [10, 7, 9, 10], 3)
    # data/data_simmim.py's MaskGenerator gives int masks on the patch grid
    masks = mask.view(num, grid, grid).long()
    loader = [(x, m, torch.zeros(len(x), dtype=torch.long))
              for x, m in batches([img, masks])]

    model, optimizer, scheduled = train(config, start, loader)
    groups = group_names(model, optimizer)
    constant_config = simmim_config(0, [EPOCHS])
    model, _, constant = train(constant_config, start, loader)
    sched = constant_config.TRAIN
    return dict(
        meta=dict(builder='models/simmim.py:SimMIM(VisionTransformerForSimMIM)'
                  ' as build_simmim builds it', yaml=YAML,
                  kwargs={k.lower(): v for k, v in TINY.items()},
                  encoder_stride=TINY['PATCH_SIZE'], norm_eps=1e-6,
                  decoder_gain=DECODER_GAIN,
                  loop='main_simmim.py:train_one_epoch',
                  schedule=dict(
                      epochs=EPOCHS, warmup_epochs=WARMUP_EPOCHS,
                      milestones=[MILESTONE], gamma=sched.LR_SCHEDULER.GAMMA,
                      iters_per_epoch=ITERS_PER_EPOCH, batch_size=BATCH_SIZE,
                      lr=sched.BASE_LR, warmup_lr=sched.WARMUP_LR),
                  constant_schedule=dict(warmup_epochs=0,
                                         milestones=[EPOCHS]),
                  clip_grad=sched.CLIP_GRAD,
                  betas=list(sched.OPTIMIZER.BETAS), eps=sched.OPTIMIZER.EPS,
                  weight_decay=sched.WEIGHT_DECAY, groups=groups),
        state_dict=initial,
        inputs=compact(dict(img=img, mask=mask)),
        outputs=dict(schedule=scheduled,
                     constant=dict(**constant,
                                   final_state_dict=model.state_dict())))
