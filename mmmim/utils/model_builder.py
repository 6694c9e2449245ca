"""Build a config's model outside a Runner, the way the Runner does."""
from contextlib import nullcontext
from typing import Optional, Union

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope


def build_model_from_config(cfg: Union[Config, str],
                            init_weights: Optional[bool] = None,
                            device: Optional[str] = None,
                            cfg_options: Optional[dict] = None):
    """``MODELS.build(cfg.model)`` in the config's scope, with the config's
    top-level ``data_preprocessor`` (mmengine's Runner passes it to the model
    when the model config has none; tools that build the model alone must
    too, or the images are not normalised as in training).

    Args:
        cfg (Config | str): A config or its path.
        init_weights (bool, optional): Call ``model.init_weights()``.
            Defaults to True, except on the meta device.
        device (str, optional): Build under ``torch.device(device)``; with
            ``'meta'`` the model has its parameter names and shapes and no
            storage (what converters check checkpoints against).
        cfg_options (dict, optional): Merged into the config first.
    """
    from mmpretrain.registry import MODELS
    if isinstance(cfg, str):
        cfg = Config.fromfile(cfg)
    if cfg_options:
        cfg = cfg.copy()
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model_cfg = cfg.model.copy()
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    with torch.device(device) if device else nullcontext():
        model = MODELS.build(model_cfg)
    if init_weights is None:
        init_weights = device != 'meta'
    if init_weights:
        model.init_weights()
    return model
