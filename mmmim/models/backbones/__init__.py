from .masked_vit import MaskedViT  # noqa: F401
from .simmim_vit import SimMIMViT  # noqa: F401
from .itpn_hivit import iTPNBackbone  # noqa: F401
from .windowed_vit import WindowedViT  # noqa: F401
from .swin import FinetuneSwinTransformer  # noqa: F401
