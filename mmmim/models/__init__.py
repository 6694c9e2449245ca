# Each sub-package registers its components into mmpretrain's registries
# (MODELS; wrappers: MODEL_WRAPPERS).
from . import (backbones, data_preprocessors, heads, losses,  # noqa: F401
               necks, selfsup, target_generators, utils, wrappers)
