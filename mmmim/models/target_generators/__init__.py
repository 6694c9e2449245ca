from .hpm_target import HPMTarget, PatchHOGGenerator  # noqa: F401
