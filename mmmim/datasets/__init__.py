from .fashion_mnist import FashionMNISTIDX, read_idx_gz
from .image_list_subset import ImageListSubset
from .transforms import *  # noqa: F401,F403

__all__ = ['FashionMNISTIDX', 'ImageListSubset', 'read_idx_gz']
from .canvas import make_canvas_sets  # noqa: F401
