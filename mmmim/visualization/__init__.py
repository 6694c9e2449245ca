from .reconstruction import pixel_mask, reconstruction_grid, to_uint8_images

__all__ = ['pixel_mask', 'reconstruction_grid', 'to_uint8_images']
from .hpm import hpm_mask_grid, render_hpm_figure  # noqa: F401
from .inputs import load_images, preprocess  # noqa: F401
