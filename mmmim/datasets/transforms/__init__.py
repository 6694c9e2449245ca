
from .mask_generators import BlockwiseMaskGenerator, RandomMaskGenerator  # noqa: F401
