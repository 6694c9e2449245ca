from .base import MIMSelfSupervisor  # noqa: F401
from .mae import MAEPretrainer  # noqa: F401
from .simmim import SimMIMPretrainer  # noqa: F401
from .itpn import (iTPNCLIPPretrainer, iTPNMFMPretrainer,  # noqa: F401
                   iTPNPretrainer)
from .hpm import HPMPretrainer  # noqa: F401
from .sim import SIMPretrainer  # noqa: F401
