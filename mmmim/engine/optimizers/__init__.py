from .autocast_optim_wrapper import AutocastOptimWrapper  # noqa: F401
from .layer_decay import MIMLayerDecayOptimWrapperConstructor  # noqa: F401
