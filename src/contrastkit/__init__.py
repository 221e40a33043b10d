"""contrastkit: contrastive representation learning across modalities.

Layers (dependencies point down only): ``cli`` > ``recipes`` > ``train`` >
``methods`` > ``views``/``nn``/``negatives``/``losses``/``data``/``eval`` >
``functional``. Import what you need, e.g. ``from contrastkit.functional import info_nce``.
"""

__version__ = "0.1.0"
