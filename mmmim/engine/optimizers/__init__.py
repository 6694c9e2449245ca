from .layer_decay import MIMLayerDecayOptimWrapperConstructor  # noqa: F401
