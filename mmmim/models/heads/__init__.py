from .itpn_heads import iTPNCLIPHead, iTPNMFMHead, iTPNPixelHead  # noqa: F401
from .loss_predictor_head import LossPredictorHead  # noqa: F401
from .siamese_dense_head import (SiameseDenseHead, SIMPredictor,  # noqa: F401
                                 SIMProjector)
from .mim_target_head import MIMTargetHead  # noqa: F401
