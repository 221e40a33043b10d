"""contrastkit: contrastive representation learning across modalities.

Layers (dependencies point down only; ``tests/test_layers.py`` enforces them, see
docs/architecture.md): ``cli`` > ``train``/``catalog`` > ``modalities`` > ``methods`` >
``losses``/``eval`` > ``nn``/``negatives`` > ``views`` > ``data`` > ``functional``/``recipes``
> ``utils``. Import what you need, e.g. ``from contrastkit.functional import info_nce``.
"""

__version__ = "0.1.0"
