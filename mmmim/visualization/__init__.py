from .reconstruction import pixel_mask, reconstruction_grid, to_uint8_images

__all__ = ['pixel_mask', 'reconstruction_grid', 'to_uint8_images']
