"""Build a config's model outside a Runner, the way the Runner does."""
from mmengine.registry import init_default_scope


def build_model_from_config(cfg, init_weights: bool = True):
    """``MODELS.build(cfg.model)`` in the config's scope, with the config's
    top-level ``data_preprocessor`` (mmengine's Runner passes it to the model
    when the model config has none; tools that build the model alone must
    too, or the images are not normalised as in training)."""
    from mmpretrain.registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model_cfg = cfg.model.copy()
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg)
    if init_weights:
        model.init_weights()
    return model
