from .hpm_target import HPMTarget, PatchHOGGenerator  # noqa: F401
from .itpn_teachers import iTPNCLIPTeacher, iTPNEMATeacher  # noqa: F401
