from .hpm_target import HPMTarget  # noqa: F401
from .itpn_teachers import iTPNCLIPTeacher, iTPNEMATeacher  # noqa: F401
from .mim_targets import (ColorBinTarget, ColorPaletteTarget,  # noqa: F401
                          DVAETokenTarget, PatchPCATarget, PixelTarget)
from .patch_hog import PatchHOGGenerator  # noqa: F401
