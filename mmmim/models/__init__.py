# Each sub-package registers its components into mmpretrain's MODELS registry.
from . import (backbones, heads, losses, necks, selfsup,  # noqa: F401
               target_generators, utils)
