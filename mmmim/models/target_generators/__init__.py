from .hpm_target import HPMTarget, PatchHOGGenerator  # noqa: F401
from .itpn_teachers import iTPNCLIPTeacher, iTPNEMATeacher  # noqa: F401
from .mim_targets import (ColorBinTarget, ColorPaletteTarget,  # noqa: F401
                          DVAETokenTarget, PatchPCATarget, PixelTarget)
