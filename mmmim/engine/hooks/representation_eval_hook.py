"""Log kNN (and linear-probe) accuracy of the frozen encoder in training."""
from typing import Optional

from mmengine.dist import (broadcast_object_list, get_world_size,
                           is_main_process)
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmpretrain.registry import DATASETS, HOOKS, TRANSFORMS
from mmmim.evaluation import evaluate_model, fashion_mnist_splits


@HOOKS.register_module()
class RepresentationEvalHook(Hook):
    """Evaluate the backbone as a frozen feature extractor while pre-training.

    Every ``interval`` epochs (or iterations with ``by_epoch=False``) and at
    the end of training, rank 0 extracts features of ``num_train`` training
    and ``num_test`` test images (Fashion-MNIST by default, no augmentation),
    computes the weighted kNN top-1 (and optionally a linear probe) and logs
    them as ``{prefix}/knn_top1`` (``{prefix}/linear_top1``) to the logger,
    the message hub and the visualizer backends (``scalars.json``).

    Under DDP only rank 0 evaluates; the result is then broadcast, so every
    rank takes part in the same collective calls and none waits forever.
    The evaluation runs in eval mode under ``no_grad``, restores the model's
    mode and leaves the torch RNG state untouched, so enabling the hook does
    not change the training run.

    Args:
        interval (int): Evaluate every ``interval`` epochs / iterations.
            Defaults to 1.
        by_epoch (bool): Count ``interval`` in epochs (True) or iterations.
            Defaults to True. With an iteration-based loop and
            ``by_epoch=True`` it evaluates once, at the end.
        num_train (int): Training images (kNN bank / probe). Defaults to 5000.
        num_test (int): Test images accuracy is measured on. Defaults to 1000.
        k (int): kNN neighbours. Defaults to 20.
        temperature (float): kNN temperature. Defaults to 0.07.
        linear_probe (bool): Also train a linear probe. Defaults to False.
        linear_cfg (dict, optional): Kwargs of ``linear_probe_accuracy``.
        img_size (int, optional): Image size; defaults to the config's
            ``img_size`` or its train dataset's ``img_size``.
        data_root (str, optional): Fashion-MNIST folder.
        train_dataset (dict, optional): Custom labelled dataset config
            (items as ``PackInputs`` makes them) replacing Fashion-MNIST
            train; ``test_dataset`` likewise.
        test_dataset (dict, optional): See ``train_dataset``.
        batch_size (int): Inference batch size. Defaults to 256.
        eval_before_train (bool): Also evaluate before the first iteration
            (the random-init baseline). Defaults to False.
        prefix (str): Scalar name prefix. Defaults to ``'repr'``.
        seed (int): Linear probe seed. Defaults to 0.
    """
    priority = 'LOW'  # after the optimizer / EMA hooks of the same stage

    def __init__(self,
                 interval: int = 1,
                 by_epoch: bool = True,
                 num_train: int = 5000,
                 num_test: int = 1000,
                 k: int = 20,
                 temperature: float = 0.07,
                 linear_probe: bool = False,
                 linear_cfg: Optional[dict] = None,
                 img_size: Optional[int] = None,
                 data_root: Optional[str] = None,
                 train_dataset: Optional[dict] = None,
                 test_dataset: Optional[dict] = None,
                 batch_size: int = 256,
                 eval_before_train: bool = False,
                 prefix: str = 'repr',
                 seed: int = 0) -> None:
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        if (train_dataset is None) != (test_dataset is None):
            raise ValueError('give both train_dataset and test_dataset, or '
                             'neither (Fashion-MNIST)')
        self.interval = interval
        self.by_epoch = by_epoch
        self.num_train = num_train
        self.num_test = num_test
        self.k = k
        self.temperature = temperature
        self.linear_probe = linear_probe
        self.linear_cfg = linear_cfg
        self.img_size = img_size
        self.data_root = data_root
        self.train_dataset_cfg = train_dataset
        self.test_dataset_cfg = test_dataset
        self.batch_size = batch_size
        self.eval_before_train = eval_before_train
        self.prefix = prefix
        self.seed = seed
        self._datasets = None
        self._last_step = None

    # -- data -----------------------------------------------------------
    def _img_size(self, runner) -> int:
        if self.img_size is not None:
            return self.img_size
        cfg = runner.cfg
        if cfg.get('img_size') is not None:
            return int(cfg.img_size)
        dataset = cfg.get('train_dataloader', {}).get('dataset', {})
        while isinstance(dataset, dict) and 'dataset' in dataset:
            dataset = dataset['dataset']
        if isinstance(dataset, dict) and dataset.get('img_size'):
            return int(dataset['img_size'])
        raise ValueError('RepresentationEvalHook: set img_size (the config '
                         'has no img_size)')

    def _build_datasets(self, runner):
        if self._datasets is None:
            if self.train_dataset_cfg is not None:
                def build(cfg):
                    cfg = dict(cfg)
                    cfg['pipeline'] = [
                        TRANSFORMS.build(t) if isinstance(t, dict) else t
                        for t in cfg.get('pipeline', [dict(type='PackInputs')])
                    ]
                    return DATASETS.build(cfg)
                self._datasets = (build(self.train_dataset_cfg),
                                  build(self.test_dataset_cfg))
            else:
                self._datasets = fashion_mnist_splits(
                    img_size=self._img_size(runner), num_train=self.num_train,
                    num_test=self.num_test, data_root=self.data_root)
        return self._datasets

    # -- evaluation -----------------------------------------------------
    def _evaluate(self, runner, point: int, step: int) -> None:
        """Evaluate; ``point`` is the epoch / iteration shown in the log,
        ``step`` the iteration count used as the visualizer step (the step
        LoggerHook uses for the training scalars)."""
        if step == self._last_step:  # e.g. interval hit on the last epoch
            return
        self._last_step = step
        results, error = None, None
        if is_main_process():
            try:
                model = runner.model
                if is_model_wrapper(model):
                    model = model.module
                train_set, test_set = self._build_datasets(runner)
                results = evaluate_model(
                    model, train_set, test_set, k=self.k,
                    temperature=self.temperature,
                    linear_probe=self.linear_probe,
                    linear_cfg=self.linear_cfg, batch_size=self.batch_size,
                    seed=self.seed)
            except Exception as exc:
                if get_world_size() == 1:
                    raise
                # Tell the other ranks (waiting in the broadcast) to stop too.
                error = f'{type(exc).__name__}: {exc}'
        if get_world_size() > 1:
            box = [(results, error)]
            broadcast_object_list(box, src=0)
            results, error = box[0]
            if error is not None:
                raise RuntimeError(
                    f'RepresentationEvalHook failed on rank 0: {error}')
        scalars = {f'{self.prefix}/{key}': value
                   for key, value in results.items()}
        for key, value in scalars.items():
            runner.message_hub.update_scalar(key, value)
        runner.visualizer.add_scalars(scalars, step=step)
        unit = 'epoch' if self.by_epoch else 'iter'
        runner.logger.info(
            f'Representation eval ({unit} {point}): ' +
            '  '.join(f'{key}: {value:.2f}' for key, value in scalars.items()))

    def before_train(self, runner) -> None:
        if self.eval_before_train:
            self._evaluate(runner, runner.epoch if self.by_epoch else
                           runner.iter, runner.iter)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if self.by_epoch:
            return
        if (self.every_n_train_iters(runner, self.interval)
                or self.is_last_train_iter(runner)):
            self._evaluate(runner, runner.iter + 1, runner.iter + 1)

    def after_train_epoch(self, runner) -> None:
        if not self.by_epoch:
            return
        if (self.every_n_epochs(runner, self.interval)
                or runner.epoch + 1 >= runner.max_epochs):
            self._evaluate(runner, runner.epoch + 1, runner.iter)

