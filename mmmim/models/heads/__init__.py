from .loss_predictor_head import LossPredictorHead  # noqa: F401
