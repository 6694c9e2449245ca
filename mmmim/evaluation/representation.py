"""Frozen-encoder evaluation of pre-trained backbones: kNN and linear probe.

Features are the global average pool of the backbone's last output map, with
the backbone run on unmasked images (every mmmim backbone, and mmpretrain's
ViTs with ``out_type='featmap'``, returns a tuple of NCHW maps). Both
classifiers run on precomputed features, so after one forward pass over the
data they take seconds on a CPU.
"""
import inspect
import math
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dataset import default_collate
from mmengine.model import is_model_wrapper
from torch.utils.data import DataLoader, Dataset


def pool_features(outs) -> torch.Tensor:
    """(B, C) features from a backbone's output: GAP of the last map.

    Args:
        outs: A tensor or a tuple/list of tensors; the last one is used.
            ``(B, C, H, W)`` maps are averaged over H and W, ``(B, L, C)``
            token sequences over L, ``(B, C)`` vectors are kept.
    """
    if isinstance(outs, (tuple, list)):
        if len(outs) == 0:
            raise ValueError('the backbone returned no outputs')
        outs = outs[-1]
    if isinstance(outs, (tuple, list)):  # e.g. ViT's (patch_tokens, cls)
        outs = outs[0]
    if outs.dim() == 4:
        return outs.mean(dim=(2, 3))
    if outs.dim() == 3:
        return outs.mean(dim=1)
    if outs.dim() == 2:
        return outs
    raise ValueError(f'cannot pool a backbone output of shape '
                     f'{tuple(outs.shape)}')


def _accepts_mask(backbone: nn.Module) -> bool:
    try:
        return 'mask' in inspect.signature(backbone.forward).parameters
    except (TypeError, ValueError):
        return False


@torch.no_grad()
def extract_features(model: nn.Module,
                     dataset: Dataset,
                     batch_size: int = 256,
                     num_workers: int = 0
                     ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Frozen-encoder features and labels of a labelled dataset.

    Runs ``model.data_preprocessor`` then ``model.backbone(inputs)`` without
    a mask (``mask=None`` is passed when the backbone's forward takes a
    ``mask`` argument) in eval mode under ``torch.no_grad()``; the model's
    train/eval mode is restored afterwards.

    Args:
        model (nn.Module): A model with ``data_preprocessor`` and ``backbone``
            (any mmpretrain / mmmim algorithm; wrappers are unwrapped).
        dataset (Dataset): Items as ``PackInputs`` makes them (``inputs`` and
            ``data_samples`` with ``gt_label``).
        batch_size (int): Inference batch size. Defaults to 256.
        num_workers (int): DataLoader workers. Defaults to 0.

    Returns:
        tuple: ``(features (N, C) float32 on CPU, labels (N,) int64)``.
    """
    if is_model_wrapper(model):
        model = model.module
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False,
                        num_workers=num_workers, collate_fn=default_collate)
    accepts_mask = _accepts_mask(model.backbone)
    was_training = model.training
    model.eval()
    feats, labels = [], []
    try:
        for data in loader:
            data = model.data_preprocessor(data, False)
            inputs = data['inputs']
            if isinstance(inputs, (list, tuple)):  # multi-view preprocessors
                inputs = inputs[0]
            # An explicit mask=None where forward takes a mask: mmpretrain's
            # BEiTPretrainViT requires the argument, and its MAEViT masks
            # by default (mask=True) but not with None.
            outs = model.backbone(inputs, mask=None) if accepts_mask \
                else model.backbone(inputs)
            feats.append(pool_features(outs).float().cpu())
            labels.append(
                torch.cat([s.gt_label.reshape(-1)[:1].cpu()
                           for s in data['data_samples']]))
    finally:
        model.train(was_training)
    return torch.cat(feats), torch.cat(labels).long()


@torch.no_grad()
def knn_accuracy(train_feats: torch.Tensor,
                 train_labels: torch.Tensor,
                 test_feats: torch.Tensor,
                 test_labels: torch.Tensor,
                 k: int = 20,
                 temperature: float = 0.07,
                 num_classes: Optional[int] = None,
                 chunk_size: int = 1024) -> float:
    """Top-1 accuracy (%) of a weighted kNN classifier (InstDisc / DINO).

    Features are l2-normalised; each test sample's ``k`` nearest training
    samples by cosine similarity ``s`` vote for their label with weight
    ``exp(s / temperature)``; the class with the largest total wins (ties go
    to the lower class index).

    Args:
        train_feats (Tensor): (N, C) bank features.
        train_labels (Tensor): (N,) bank labels.
        test_feats (Tensor): (M, C) query features.
        test_labels (Tensor): (M,) query labels.
        k (int): Neighbours; clipped to N. Defaults to 20.
        temperature (float): Vote temperature. Defaults to 0.07.
        num_classes (int, optional): Defaults to ``max label + 1``.
        chunk_size (int): Queries per similarity block (memory bound).
    """
    if k < 1:
        raise ValueError(f'k must be >= 1, got {k}')
    if temperature <= 0:
        raise ValueError(f'temperature must be > 0, got {temperature}')
    train_feats = F.normalize(train_feats.float(), dim=1)
    test_feats = F.normalize(test_feats.float(), dim=1)
    train_labels = train_labels.long()
    test_labels = test_labels.long()
    if num_classes is None:
        num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    k = min(k, train_feats.shape[0])
    correct = 0
    for start in range(0, test_feats.shape[0], chunk_size):
        queries = test_feats[start:start + chunk_size]
        sim = queries @ train_feats.T
        top_sim, top_idx = sim.topk(k, dim=1)
        votes = torch.zeros(queries.shape[0], num_classes)
        votes.scatter_add_(1, train_labels[top_idx],
                           (top_sim / temperature).exp())
        pred = votes.argmax(dim=1)
        correct += int((pred == test_labels[start:start + chunk_size]).sum())
    return 100.0 * correct / test_feats.shape[0]


@torch.no_grad()
def knn_topk_accuracies(train_feats: torch.Tensor,
                        train_labels: torch.Tensor,
                        test_feats: torch.Tensor,
                        test_labels: torch.Tensor,
                        ks: Sequence[int] = (10, 20, 100, 200),
                        temperature: float = 0.07,
                        topk: Sequence[int] = (1, 5),
                        num_classes: Optional[int] = None,
                        chunk_size: int = 1024) -> Dict[str, float]:
    """Top-k accuracies (%) of the weighted kNN classifier for several k.

    The classifier of :func:`knn_accuracy` (DINO's, which HPM's main_knn.py
    copies) evaluated for every ``k`` in ``ks`` from one neighbour search.
    Returns ``{'k10_top1': .., 'k10_top5': .., ...}``; top-``t`` counts a
    query as correct when its label is among the ``t`` classes with the
    most votes.
    """
    if min(ks) < 1:
        raise ValueError(f'every k must be >= 1, got {list(ks)}')
    if temperature <= 0:
        raise ValueError(f'temperature must be > 0, got {temperature}')
    train_feats = F.normalize(train_feats.float(), dim=1)
    test_feats = F.normalize(test_feats.float(), dim=1)
    train_labels = train_labels.long().to(train_feats.device)
    test_labels = test_labels.long().to(train_feats.device)
    if num_classes is None:
        num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    max_k = min(max(ks), train_feats.shape[0])
    correct = {(k, t): 0 for k in ks for t in topk}
    for start in range(0, test_feats.shape[0], chunk_size):
        queries = test_feats[start:start + chunk_size].to(train_feats.device)
        targets = test_labels[start:start + chunk_size]
        top_sim, top_idx = (queries @ train_feats.T).topk(max_k, dim=1)
        weights = (top_sim / temperature).exp()
        neighbours = train_labels[top_idx]
        for k in ks:
            votes = torch.zeros(queries.shape[0], num_classes,
                                device=queries.device)
            votes.scatter_add_(1, neighbours[:, :k], weights[:, :k])
            ranked = votes.topk(min(max(topk), num_classes), dim=1).indices
            hits = ranked == targets[:, None]
            for t in topk:
                correct[(k, t)] += int(hits[:, :t].any(dim=1).sum())
    num = test_feats.shape[0]
    return {f'k{k}_top{t}': 100.0 * c / num for (k, t), c in correct.items()}


def linear_probe_accuracy(train_feats: torch.Tensor,
                          train_labels: torch.Tensor,
                          test_feats: torch.Tensor,
                          test_labels: torch.Tensor,
                          num_classes: Optional[int] = None,
                          epochs: int = 30,
                          batch_size: int = 256,
                          lr: float = 0.1,
                          weight_decay: float = 0.0,
                          optimizer: str = 'sgd',
                          seed: int = 0) -> float:
    """Top-1 accuracy (%) of a linear probe trained on frozen features.

    The probe is ``BatchNorm1d(affine=False)`` + ``Linear`` (MAE's linear
    probe head), trained with SGD (momentum 0.9) or AdamW and a cosine
    schedule on the precomputed features. It is deterministic for a given
    ``seed`` and leaves the global torch RNG state untouched.

    Args:
        train_feats (Tensor): (N, C) training features.
        train_labels (Tensor): (N,) training labels.
        test_feats (Tensor): (M, C) test features.
        test_labels (Tensor): (M,) test labels.
        num_classes (int, optional): Defaults to ``max label + 1``.
        epochs (int): Training epochs. Defaults to 30.
        batch_size (int): Mini-batch size. Defaults to 256.
        lr (float): Peak learning rate. Defaults to 0.1 (SGD); with
            ``optimizer='adamw'`` values of 0.01-0.1 work on standardised
            features.
        weight_decay (float): Defaults to 0.
        optimizer (str): ``'sgd'`` or ``'adamw'``. Defaults to ``'sgd'``.
        seed (int): Seed for the probe's init and batch order.
    """
    if optimizer not in ('sgd', 'adamw'):
        raise ValueError(f"optimizer must be 'sgd' or 'adamw', got "
                         f'{optimizer!r}')
    train_feats = train_feats.float()
    test_feats = test_feats.float()
    train_labels = train_labels.long()
    test_labels = test_labels.long()
    if num_classes is None:
        num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    steps_per_epoch = max(1, math.ceil(train_feats.shape[0] / batch_size))
    total_steps = epochs * steps_per_epoch
    # The probe's ops are tiny: one thread avoids OpenMP overhead, which
    # dominates (10-40x slower) on a busy machine.
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_probe(train_feats, train_labels, test_feats,
                            test_labels, num_classes, epochs, batch_size, lr,
                            weight_decay, optimizer, seed, total_steps)
    finally:
        torch.set_num_threads(num_threads)


def _train_probe(train_feats, train_labels, test_feats, test_labels,
                 num_classes, epochs, batch_size, lr, weight_decay,
                 optimizer, seed, total_steps) -> float:
    num_train = train_feats.shape[0]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        probe = nn.Sequential(
            nn.BatchNorm1d(train_feats.shape[1], affine=False, eps=1e-6),
            nn.Linear(train_feats.shape[1], num_classes))
        nn.init.trunc_normal_(probe[1].weight, std=0.01)
        nn.init.zeros_(probe[1].bias)
        if optimizer == 'sgd':
            optim = torch.optim.SGD(probe.parameters(), lr=lr, momentum=0.9,
                                    weight_decay=weight_decay)
        else:
            optim = torch.optim.AdamW(probe.parameters(), lr=lr,
                                      weight_decay=weight_decay)
        step = 0
        probe.train()
        with torch.enable_grad():
            for _ in range(epochs):
                order = torch.randperm(num_train, generator=generator)
                for start in range(0, num_train, batch_size):
                    idx = order[start:start + batch_size]
                    if idx.numel() < 2 and num_train >= 2:
                        continue  # BatchNorm needs two samples
                    for group in optim.param_groups:
                        group['lr'] = 0.5 * lr * (
                            1 + math.cos(math.pi * step / total_steps))
                    loss = F.cross_entropy(probe(train_feats[idx]),
                                           train_labels[idx])
                    optim.zero_grad()
                    loss.backward()
                    optim.step()
                    step += 1
        probe.eval()
        with torch.no_grad():
            pred = probe(test_feats).argmax(dim=1)
    return 100.0 * float((pred == test_labels).float().mean())


def evaluate_features(train_feats: torch.Tensor,
                      train_labels: torch.Tensor,
                      test_feats: torch.Tensor,
                      test_labels: torch.Tensor,
                      k: int = 20,
                      temperature: float = 0.07,
                      linear_probe: bool = True,
                      linear_cfg: Optional[dict] = None,
                      seed: int = 0) -> Dict[str, float]:
    """``{'knn_top1': ..., 'linear_top1': ...}`` (percent) for features.

    Args:
        train_feats, train_labels, test_feats, test_labels: As in
            :func:`knn_accuracy`.
        k (int): kNN neighbours. Defaults to 20.
        temperature (float): kNN temperature. Defaults to 0.07.
        linear_probe (bool): Also train a linear probe. Defaults to True.
        linear_cfg (dict, optional): Extra kwargs of
            :func:`linear_probe_accuracy`.
        seed (int): Probe seed. Defaults to 0.
    """
    results = dict(knn_top1=knn_accuracy(train_feats, train_labels,
                                         test_feats, test_labels, k=k,
                                         temperature=temperature))
    if linear_probe:
        results['linear_top1'] = linear_probe_accuracy(
            train_feats, train_labels, test_feats, test_labels, seed=seed,
            **(linear_cfg or {}))
    return results


def evaluate_model(model: nn.Module,
                   train_dataset: Dataset,
                   test_dataset: Dataset,
                   k: int = 20,
                   temperature: float = 0.07,
                   linear_probe: bool = True,
                   linear_cfg: Optional[dict] = None,
                   batch_size: int = 256,
                   num_workers: int = 0,
                   seed: int = 0) -> Dict[str, float]:
    """Extract frozen features of both splits and evaluate them.

    Args:
        model (nn.Module): Model with ``data_preprocessor`` and ``backbone``.
        train_dataset (Dataset): kNN bank / probe training split.
        test_dataset (Dataset): Split the accuracy is measured on.
        k, temperature, linear_probe, linear_cfg, seed: As in
            :func:`evaluate_features`.
        batch_size (int): Inference batch size. Defaults to 256.
        num_workers (int): DataLoader workers. Defaults to 0.
    """
    # The DataLoader draws a base seed from the global torch RNG; keep the
    # caller's (e.g. a training run's) random stream untouched.
    with torch.random.fork_rng(devices=[]):
        train = extract_features(model, train_dataset, batch_size,
                                 num_workers)
        test = extract_features(model, test_dataset, batch_size, num_workers)
    return evaluate_features(*train, *test, k=k, temperature=temperature,
                             linear_probe=linear_probe,
                             linear_cfg=linear_cfg, seed=seed)


def fashion_mnist_splits(img_size: int = 28,
                         num_train: Optional[int] = 10000,
                         num_test: Optional[int] = 2000,
                         data_root: Optional[str] = None,
                         pipeline: Sequence[dict] = (dict(
                             type='PackInputs'), )):
    """Deterministic Fashion-MNIST train / test datasets for evaluation.

    Args:
        img_size (int): Image side (the 28 px images are resized).
        num_train (int, optional): First ``num_train`` training images.
        num_test (int, optional): First ``num_test`` test images.
        data_root (str, optional): Folder with the IDX ``.gz`` files.
        pipeline (list): Defaults to ``[PackInputs]`` only (no augmentation).
    """
    from mmpretrain.registry import DATASETS, TRANSFORMS

    # Build the transforms here so that no default scope is needed.
    pipeline = [TRANSFORMS.build(t) if isinstance(t, dict) else t
                for t in pipeline]
    common = dict(type='FashionMNISTIDX', img_size=img_size,
                  pipeline=pipeline)
    if data_root is not None:
        common['data_root'] = data_root
    train = DATASETS.build(dict(common, split='train', num_samples=num_train))
    test = DATASETS.build(dict(common, split='test', num_samples=num_test))
    return train, test
