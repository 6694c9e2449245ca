"""Training-loop parity cases (``<method>_train``), one module per method;
importing the package registers them in ``make_fixtures.CASES``. What they
share and what they store: ``common.py``."""
from . import hpm, itpn, mae, sim, simmim  # noqa: F401
from . import mae_finetune  # noqa: F401
from . import itpn_clip  # noqa: F401
