from .masked_vit import MaskedViT  # noqa: F401
