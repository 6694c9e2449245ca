# Each sub-package registers its components into mmpretrain's registries
# (MODELS; wrappers: MODEL_WRAPPERS).
from . import (backbones, heads, losses, necks, selfsup,  # noqa: F401
               target_generators, utils, wrappers)
