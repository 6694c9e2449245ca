"""MAE fine-tuning: six steps of facebookresearch/mae's own fine-tuning
loop (layer-wise lr decay, warm-up + cosine to ``min_lr``)."""
import argparse

import torch

from make_fixtures import (VIT_TINY, case, compact, detach, layer_norm_1e6,
                           perturb, randn, state_of)
from .common import (EPOCHS, ITERS_PER_EPOCH, BATCH_SIZE, Recorded,
                     StepRecorder, batches, cpu_stand_ins, group_names,
                     schedule)

NUM_CLASSES = 10
#: FINETUNE.md:67-72, 77 (ViT-B): blr 5e-4, layer decay 0.65, wd 0.05, a
#: total batch of 32 x 4 nodes x 8 GPUs = 1024; main_finetune.py:73 min_lr
#: 1e-6
BLR, LAYER_DECAY, WEIGHT_DECAY, TOTAL_BATCH, MIN_LR = 5e-4, 0.65, 0.05, \
    1024, 1e-6
SMOOTHING = 0.1  # main_finetune.py:84
#: a mixing ratio as timm's Mixup draws it, for the criterion with mixup on
MIXUP_LAM = 0.7


def mixup_criterion(logits, labels):
    """What the loop's criterion computes with mixup / cutmix on
    (main_finetune.py:222-225, 290-292): timm's ``mixup_target`` (label
    smoothing inside it) and ``SoftTargetCrossEntropy``, at a fixed lam."""
    from timm.data.mixup import mixup_target
    from timm.loss import SoftTargetCrossEntropy
    target = mixup_target(labels, NUM_CLASSES, MIXUP_LAM, SMOOTHING,
                          device='cpu')
    return dict(logits=logits, labels=labels, lam=MIXUP_LAM, target=target,
                loss=SoftTargetCrossEntropy()(logits, target))


@case('mae', '')
def mae_finetune_train():
    """MAE fine-tuning through ``engine_finetune.train_one_epoch``:
    ``models_vit.VisionTransformer(global_pool=True)`` (mean of the patch
    tokens, fc_norm, head; head weight trunc-normal(2e-5) as
    main_finetune.py:257, then everything perturbed), depth 2, drop path 0;
    ``main_finetune.py``'s optimiser (``util/lr_decay.py:param_groups_lrd``,
    layer decay 0.65, wd 0.05, no decay for 1-D parameters, ``pos_embed``
    and ``cls_token``; AdamW with torch's betas; lr = 5e-4 x 1024 / 256),
    its per-iteration warm-up + half-cosine to min_lr 1e-6 scaled per group
    (``util/lr_sched.py``), its loss scaler (float32 without a GPU), no grad
    clipping (``--clip_grad`` None). Random draws off: no mixup / cutmix
    (so the criterion is ``LabelSmoothingCrossEntropy(0.1)``), no
    RandAugment / random erasing (fixed tensors). Also stored: the
    criterion with mixup on (``mixup``: timm's smoothed mixup target and
    ``SoftTargetCrossEntropy`` at lam 0.7) on fixed logits."""
    import engine_finetune
    import models_vit
    from timm.loss import LabelSmoothingCrossEntropy
    from timm.models.layers import trunc_normal_
    import util.lr_decay as lrd
    from util.misc import NativeScalerWithGradNormCount as NativeScaler
    cpu_stand_ins()
    kwargs = dict(VIT_TINY, qkv_bias=True, num_classes=NUM_CLASSES)
    torch.manual_seed(0)
    # main_finetune.py:227-231
    model = models_vit.VisionTransformer(
        global_pool=True, drop_path_rate=0., norm_layer=layer_norm_1e6(),
        **kwargs)
    trunc_normal_(model.head.weight, std=2e-5)  # main_finetune.py:257
    perturb(model, 1)
    initial = state_of(model)
    num = ITERS_PER_EPOCH * BATCH_SIZE
    img = randn(num, 3, 32, 32, seed=2)
    g = torch.Generator().manual_seed(3)
    label = torch.randint(NUM_CLASSES, (num, ), generator=g)
    loader = batches([img, label])

    # main_finetune.py:61 (no clipping by default), :267-270 (lr rule, for
    # the recipe's total batch),
    # :283-287 (groups, AdamW), :288 (scaler), :293-294 (criterion without
    # mixup), :313-319 (the loop's arguments: clip_grad, mixup_fn)
    args = argparse.Namespace(
        accum_iter=1, blr=BLR, min_lr=MIN_LR, layer_decay=LAYER_DECAY,
        weight_decay=WEIGHT_DECAY, smoothing=SMOOTHING, clip_grad=None,
        **schedule())
    args.lr = args.blr * TOTAL_BATCH / 256
    param_groups = lrd.param_groups_lrd(
        model, args.weight_decay,
        no_weight_decay_list=model.no_weight_decay(),
        layer_decay=args.layer_decay)
    optimizer = torch.optim.AdamW(param_groups, lr=args.lr)
    loss_scaler = NativeScaler()
    criterion = Recorded(LabelSmoothingCrossEntropy(smoothing=args.smoothing))
    mixup_fn = None

    # the lr of every group at every forward (the losses: the criterion's)
    steps = StepRecorder(model, optimizer, loss_of=lambda logits: logits)
    for epoch in range(EPOCHS):
        engine_finetune.train_one_epoch(
            model, criterion, loader, optimizer, torch.device('cpu'), epoch,
            loss_scaler, args.clip_grad, mixup_fn, log_writer=None,
            args=args)
    steps.remove()
    groups = group_names(model, optimizer)
    return dict(
        meta=dict(builder='models_vit.py:VisionTransformer(global_pool=True)',
                  kwargs=kwargs, norm_eps=1e-6, drop_path_rate=0.,
                  loop='engine_finetune.py:train_one_epoch',
                  criterion='timm LabelSmoothingCrossEntropy',
                  smoothing=args.smoothing, clip_grad=args.clip_grad,
                  betas=list(optimizer.defaults['betas']),
                  eps=optimizer.defaults['eps'],
                  schedule=schedule(lr=args.lr, min_lr=args.min_lr,
                                    blr=args.blr, total_batch=TOTAL_BATCH,
                                    layer_decay=args.layer_decay,
                                    weight_decay=args.weight_decay),
                  groups=groups),
        state_dict=initial,
        inputs=compact(dict(img=img, label=label)),
        outputs=dict(losses=torch.stack(criterion.results),
                     lrs=steps.result()['lrs'],
                     final_state_dict=model.state_dict(),
                     mixup=detach(mixup_criterion(
                         randn(4, NUM_CLASSES, seed=5),
                         torch.tensor([3, 7, 7, 1])))))
