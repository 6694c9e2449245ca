
from .mask_generators import (BlockwiseMaskGenerator, GridMaskGenerator,  # noqa: F401
                              RandomMaskGenerator, SquareMaskGenerator)
from .sim_views import SIMTwoViews  # noqa: F401
from .crop import SingleDrawRandomResizedCrop  # noqa: F401
from .loading import ImageLoadError, LoadImageChecked  # noqa: F401
from .reduced_decode import DecodeRandomResizedCrop  # noqa: F401
from .device_decode import DeviceDecodeRandomResizedCrop  # noqa: F401
