from .masked_pixel_loss import MaskedPixelL1Loss  # noqa: F401
