from .hpm_teacher_hook import HPMTeacherHook  # noqa: F401
