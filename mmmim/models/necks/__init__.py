from .mae_decoder import MAEDecoder  # noqa: F401
from .itpn_pyramid import iTPNPyramidNeck  # noqa: F401
from .itpn_decoder import iTPNPixelDecoder  # noqa: F401
from .simple_feature_pyramid import SimpleFeaturePyramid  # noqa: F401
from .pool_norm_neck import PoolNormNeck  # noqa: F401
from .simmim_decoders import InverseSwinDecoder, SimMIMDecoder  # noqa: F401
