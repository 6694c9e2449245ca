from .base import MIMSelfSupervisor  # noqa: F401
from .mae import MAEPretrainer  # noqa: F401
