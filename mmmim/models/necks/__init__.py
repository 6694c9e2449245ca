from .mae_decoder import MAEDecoder  # noqa: F401
