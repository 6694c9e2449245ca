from .masked_pixel_loss import MaskedPixelL1Loss  # noqa: F401
from .hpm_losses import HPMRelativeLoss, HPMStandardizedMSELoss  # noqa: F401
from .unigrad import UniGradLoss  # noqa: F401
