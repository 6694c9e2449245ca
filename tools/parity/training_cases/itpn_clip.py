"""iTPN CLIP pre-training (masked feature modeling with a frozen CLIP
teacher): eight steps of sunsmarterjie/iTPN's own training loop
(``itpn_clip``)."""
import argparse
import importlib.util
import random
import sys
import types
from functools import partial

import torch
from PIL import Image

from make_fixtures import case, detach, perturb, state_of
from .common import BATCH_SIZE, ITERS_PER_EPOCH, batches, cpu_stand_ins, \
    group_names

#: the forward case's student (``make_fixtures.itpn_clip``) at half the
#: width (main stage 32, pyramid 16), so that its initial (float16) and final
#: (float32) weights and the teacher fit a small file; depth 5: the
#: reference's auxiliary blocks take the drop-path rates of main blocks
#: int(0.75 x depth) + (0, 1) (modeling_pretrain.py:184-185), which must
#: exist. Pyramid depth, bridge MLP ratio, num_outs and LayerNorm eps as
#: ``clip_tpn_base_3324_patch16_224`` builds them (modeling_pretrain.py:
#: 309-312); layer scale 0.1, relative position bias and absolute table on
#: (run_itpn_pretraining.py:44-50, README.md:22)
ITPN_CLIP_TRAIN_TINY = dict(img_size=32, patch_size=8, embed_dim=32,
                            mlp_depth1=1, mlp_depth2=1, depth=5, num_heads=2,
                            fpn_dim=16, fpn_depth=1, teacher_dim=24,
                            init_values=0.1, mlp_ratio=2.)
#: the forward case's tiny CLIP (vision tower 64 wide: OpenAI CLIP has
#: 64-wide heads)
CLIP_TINY = dict(embed_dim=24, image_resolution=32, vision_layers=1,
                 vision_width=64, vision_patch_size=8, context_length=4,
                 vocab_size=16, transformer_width=16, transformer_heads=1,
                 transformer_layers=1)
#: 2 warm-up epochs of 4, so that the linspace warm-up has inner points
#: (``np.linspace(0, lr, 4)``) and the cosine four steps down to min_lr
EPOCHS, WARMUP_EPOCHS = 4, 2
#: the pipeline's block-wise mask: 6 of 16 patches in blocks of at least 2
#: (base: 75 of 196 in blocks of at least 16, run_itpn_pretraining.py:54-57)
NUM_MASK_PATCHES, MIN_MASK_PATCHES_PER_BLOCK = 6, 2


def tensorboardx_stand_in():
    """``utils/utils.py`` imports ``tensorboardX`` at the top for its
    ``TensorboardLogger``, which the loop only uses with a ``log_writer``
    (None here)."""
    if importlib.util.find_spec('tensorboardX') is None:
        module = types.ModuleType('tensorboardX')

        def summary_writer(*args, **kwargs):
            raise RuntimeError('tensorboardX stand-in: no logging here')
        module.SummaryWriter = summary_writer
        sys.modules['tensorboardX'] = module


def logged_scale_stand_in(loss_scaler):
    """The loop logs ``loss_scaler.state_dict()["scale"]`` every step
    (engine_for_pretraining.py:79); without a GPU the scaler's GradScaler is
    disabled and its state dict empty: no scaling, 1.0, is logged instead."""
    state_dict = loss_scaler.state_dict
    loss_scaler.state_dict = lambda: {'scale': 1.0, **state_dict()}
    return loss_scaler


def tiny_teacher():
    """``clip_distill`` (its ``ScalingLayerForClip``, target LayerNorm and
    ``get_target``) around a tiny random CLIP: its ``__init__`` would load
    the OpenAI weights, so the attributes it sets are set here as it sets
    them (clip/create_clip.py:7-22)."""
    import clip.create_clip as create_clip
    from clip.model import CLIP
    torch.manual_seed(3)
    clip_model = perturb(CLIP(**CLIP_TINY).float(), 5)
    teacher = create_clip.clip_distill.__new__(create_clip.clip_distill)
    torch.nn.Module.__init__(teacher)
    teacher.scaling_layer = create_clip.ScalingLayerForClip()
    teacher.teacher_model = clip_model
    teacher.decoder_out_dim = CLIP_TINY['embed_dim']
    teacher.LN = torch.nn.LayerNorm(teacher.decoder_out_dim,
                                    elementwise_affine=False)
    for param in teacher.teacher_model.parameters():
        param.requires_grad = False
    teacher.teacher_model.eval()
    teacher.teacher_input_size = CLIP_TINY['image_resolution']
    # .eval(): run_itpn_pretraining.py:171-172
    return teacher.eval(), clip_model


def pipeline_samples(num, seed):
    """``num`` samples as the reference's ``DataAugmentationForiTPN``
    hands them to the loop, on fixed 8-bit images instead of the random
    crops of its ``common_transform``: ``patch_transform`` (ToTensor, then
    Normalize with IMAGENET_INCEPTION mean = std = 0.5: the README does not
    pass --imagenet_default_mean_and_std), ``visual_token_transform``
    (ToTensor: the teacher's [0, 1] image) and the block-wise mask of its
    ``MaskingGenerator``, drawn after ``random.seed(seed)``. The two
    transforms are datasets.py:27-29,40-48 as written (datasets.py itself
    imports timm 0.4's ``ImageDataset``); the generator is the reference's
    (masking_generator.py, with datasets.py:50-54's arguments)."""
    from masking_generator import MaskingGenerator
    from timm.data.constants import (IMAGENET_INCEPTION_MEAN,
                                     IMAGENET_INCEPTION_STD)
    from torchvision import transforms
    patch_transform = transforms.Compose([
        transforms.ToTensor(),
        transforms.Normalize(mean=torch.tensor(IMAGENET_INCEPTION_MEAN),
                             std=torch.tensor(IMAGENET_INCEPTION_STD))])
    visual_token_transform = transforms.Compose([transforms.ToTensor()])
    masked_position_generator = MaskingGenerator(
        (4, 4), num_masking_patches=NUM_MASK_PATCHES, max_num_patches=None,
        min_num_patches=MIN_MASK_PATCHES_PER_BLOCK)
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (num, 32, 32, 3), generator=g,
                           dtype=torch.uint8)
    random.seed(seed)
    samples, images, masks = [], [], []
    for image in pixels:
        pil = Image.fromarray(image.numpy())
        samples.append(patch_transform(pil))
        images.append(visual_token_transform(pil))
        masks.append(torch.from_numpy(masked_position_generator()))
    # the fixture keeps the 8-bit images only: the transforms are these
    # float32 operations, which the test repeats bit for bit
    to_tensor = pixels.permute(0, 3, 1, 2).float().div(255)
    assert torch.equal(torch.stack(images), to_tensor)
    assert torch.equal(torch.stack(samples), (to_tensor - 0.5) / 0.5)
    return pixels, torch.stack(samples), torch.stack(images), \
        torch.stack(masks)


class LoopRecorder:
    """At every training forward of the student: the lr and weight decay
    of every group (set by the loop just before it,
    engine_for_pretraining.py:40-45); every ``SmoothL1Loss`` call of the
    loop (main, then aux, :61-64); the teacher's targets of the first epoch
    (the same images come again later)."""

    def __init__(self, model, teacher, optimizer):
        self.lrs, self.wds, self.terms, self.targets = [], [], [], []
        self.optimizer = optimizer
        self.handles = [
            model.register_forward_hook(self._student),
            teacher.register_forward_hook(self._teacher),
            torch.nn.modules.module.register_module_forward_hook(
                self._loss)]

    def _student(self, module, args, output):
        if module.training:
            self.lrs.append([g['lr'] for g in self.optimizer.param_groups])
            self.wds.append([g['weight_decay']
                             for g in self.optimizer.param_groups])

    def _teacher(self, module, args, output):
        if len(self.targets) < ITERS_PER_EPOCH:
            self.targets.append(output.detach().clone())

    def _loss(self, module, args, output):
        if isinstance(module, torch.nn.SmoothL1Loss):
            self.terms.append(output.detach().clone())

    def remove(self):
        for handle in self.handles:
            handle.remove()

    def result(self):
        terms = torch.stack(self.terms).view(-1, 2)
        return dict(loss_main=terms[:, 0], loss_aux=terms[:, 1],
                    losses=terms.sum(1),
                    lrs=torch.tensor(self.lrs, dtype=torch.float64),
                    weight_decays=torch.tensor(self.wds,
                                               dtype=torch.float64),
                    targets=torch.stack(self.targets))


@case('iTPN', 'itpn_clip')
def itpn_clip_train():
    """iTPN CLIP pre-training through ``engine_for_pretraining.
    train_one_epoch``: ``run_itpn_pretraining.py``'s optimiser
    (``optim_factory.create_optimizer``: no decay for 1-D parameters, biases
    and the model's ``no_weight_decay()`` = {absolute_pos_embed}; AdamW,
    betas (0.9, 0.98), eps 1e-8, wd 0.05, absolute lr 1.5e-3 as README.md
    runs it), its per-iteration lr and weight-decay lists
    (``utils.cosine_scheduler``: ``np.linspace`` warm-up from 0, cosine to
    min_lr 1e-5; wd constant, set only on groups with wd > 0), no gradient
    clipping, its loss scaler (disabled without a GPU: float32), drop path 0
    (the reference's 0.1 draws at random); the frozen tiny CLIP teacher on
    the [0, 1] image, the student on the same image normalised with mean =
    std = 0.5; each sample's block-wise mask from the reference's own
    ``MaskingGenerator``, fed as data. SmoothL1 of the main and auxiliary
    outputs over all tokens, summed."""
    tensorboardx_stand_in()
    import utils
    from engine_for_pretraining import train_one_epoch
    from modeling_pretrain import iTPNClipDistill
    from optim_factory import create_optimizer
    from timm.data.constants import (IMAGENET_INCEPTION_MEAN,
                                     IMAGENET_INCEPTION_STD)
    cpu_stand_ins()
    kwargs = dict(ITPN_CLIP_TRAIN_TINY)
    torch.manual_seed(0)
    # run_itpn_pretraining.py:150-160 (create_model with drop_path_rate,
    # init_values, ape, rpe, teacher_dim) of clip_tpn_base_3324_patch16_224
    # (modeling_pretrain.py:307-312), at the tiny size
    model = perturb(iTPNClipDistill(
        bridge_mlp_ratio=3., num_outs=3, drop_path_rate=0., ape=True,
        rpe=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        **kwargs), 1)
    initial = state_of(model)
    teacher, clip_model = tiny_teacher()

    num = ITERS_PER_EPOCH * BATCH_SIZE
    pixels, samples, images, masks = pipeline_samples(num, seed=2)
    labels = torch.zeros(num, dtype=torch.long)  # ImageFolder's; unused
    # the same samples every epoch, each with its own mask
    loader = [((s, i, m), y)
              for s, i, m, y in batches([samples, images, masks, labels])]

    # README.md:11-24 (--lr 1.5e-3, --opt_eps 1e-8; --opt_betas 0.98 gives
    # [0.98], which torch's AdamW rejects: (0.9, 0.98), beta1 at torch's
    # default, as the config reads it), run_itpn_pretraining.py:68-94 (the
    # other defaults: adamw, wd 0.05, weight_decay_end None, min_lr 1e-5,
    # warmup_steps -1, clip_grad None)
    args = argparse.Namespace(
        opt='adamw', opt_eps=1e-8, opt_betas=[0.9, 0.98], momentum=0.9,
        weight_decay=0.05, weight_decay_end=None, lr=1.5e-3, min_lr=1e-5,
        warmup_epochs=WARMUP_EPOCHS, warmup_steps=-1, epochs=EPOCHS,
        clip_grad=None)
    num_training_steps_per_epoch = ITERS_PER_EPOCH
    # run_itpn_pretraining.py:248-250
    optimizer = create_optimizer(args, model)
    loss_scaler = logged_scale_stand_in(
        utils.NativeScalerWithGradNormCount())
    # run_itpn_pretraining.py:253-260
    lr_schedule_values = utils.cosine_scheduler(
        args.lr, args.min_lr, args.epochs, num_training_steps_per_epoch,
        warmup_epochs=args.warmup_epochs, warmup_steps=args.warmup_steps,
    )
    if args.weight_decay_end is None:
        args.weight_decay_end = args.weight_decay
    wd_schedule_values = utils.cosine_scheduler(
        args.weight_decay, args.weight_decay_end, args.epochs,
        num_training_steps_per_epoch)

    # as built: the loop then writes numpy floats into the decayed groups
    groups = group_names(model, optimizer)
    steps = LoopRecorder(model, teacher, optimizer)
    for epoch in range(EPOCHS):  # run_itpn_pretraining.py:268-282
        train_one_epoch(
            model, teacher, loader, optimizer, torch.device('cpu'), epoch,
            loss_scaler, args.clip_grad, log_writer=None,
            start_steps=epoch * num_training_steps_per_epoch,
            lr_schedule_values=lr_schedule_values,
            wd_schedule_values=wd_schedule_values, args=args)
    steps.remove()
    schedule = dict(epochs=EPOCHS, warmup_epochs=WARMUP_EPOCHS,
                    iters_per_epoch=ITERS_PER_EPOCH, batch_size=BATCH_SIZE,
                    lr=args.lr, min_lr=args.min_lr,
                    weight_decay=args.weight_decay,
                    betas=tuple(args.opt_betas), eps=args.opt_eps)
    return dict(
        meta=dict(builder='itpn_clip/modeling_pretrain.py:iTPNClipDistill',
                  kwargs=kwargs, norm_eps=1e-6, rpe=True, ape=True,
                  drop_path_rate=0.,
                  teacher='itpn_clip/clip/create_clip.py:clip_distill',
                  clip_kwargs=CLIP_TINY,
                  input_mean=tuple(IMAGENET_INCEPTION_MEAN),
                  input_std=tuple(IMAGENET_INCEPTION_STD),
                  masking=dict(num_masking_patches=NUM_MASK_PATCHES,
                               min_num_patches=MIN_MASK_PATCHES_PER_BLOCK),
                  loop='itpn_clip/engine_for_pretraining.py:train_one_epoch',
                  schedule=schedule,
                  lr_schedule_values=torch.from_numpy(lr_schedule_values),
                  wd_schedule_values=torch.from_numpy(wd_schedule_values),
                  groups=groups),
        state_dict=initial,
        teacher_state_dict=state_of(clip_model.visual),
        # (N, H, W, 3) 8-bit images: the teacher got pixels / 255, the
        # student (pixels / 255 - 0.5) / 0.5 (see pipeline_samples)
        inputs=dict(pixels=pixels, mask=masks.bool()),
        outputs=dict(**steps.result(),
                     final_state_dict=detach(model.state_dict())))
