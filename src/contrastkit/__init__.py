"""contrastkit: contrastive representation learning across modalities.

Layers (dependencies point down only; ``tests/test_layers.py`` enforces them, see
docs/architecture.md): ``cli`` > ``train``/``catalog`` > ``modalities`` > ``methods`` >
``losses``/``eval`` > ``nn``/``negatives`` > ``views`` > ``data`` >
``functional``/``recipes`` > ``utils``. Import what you need, e.g. ``from contrastkit.functional import info_nce``.

``contrastkit.load_encoder(DIR)`` rebuilds an encoder written by
``contrastkit export RUN_DIR --format safetensors`` (see docs/export.md).
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contrastkit.nn.encoder_folder import load_encoder

__version__ = "0.1.0"

__all__ = ["load_encoder"]


def __getattr__(name: str) -> object:
    # Lazy: ``import contrastkit.functional`` must not import torch.nn's encoders and safetensors.
    if name == "load_encoder":
        from contrastkit.nn.encoder_folder import load_encoder

        return load_encoder
    raise AttributeError(f"module 'contrastkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
