from . import hooks, optimizers  # noqa: F401
from .runner import ResilientRunner  # noqa: F401
from .schedulers import LayerDecayCosineAnnealingLR, LinearWarmupLR  # noqa
