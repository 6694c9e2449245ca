
from .mask_generators import BlockwiseMaskGenerator, RandomMaskGenerator  # noqa: F401
from .sim_views import SIMTwoViews  # noqa: F401
from .loading import ImageLoadError, LoadImageChecked  # noqa: F401
