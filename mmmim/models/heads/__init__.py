from .loss_predictor_head import LossPredictorHead  # noqa: F401
from .itpn_heads import iTPNPixelHead  # noqa: F401
from .siamese_dense_head import SiameseDenseHead  # noqa: F401
