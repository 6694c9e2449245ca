from .checkpoint_hook import AtomicCheckpointHook  # noqa: F401
from .hpm_teacher_hook import HPMTeacherHook  # noqa: F401
from .sim_momentum_hook import SIMMomentumHook  # noqa: F401
from .representation_eval_hook import RepresentationEvalHook  # noqa: F401
from .rng_state_hook import RNGStateHook  # noqa: F401
