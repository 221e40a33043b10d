"""Loss modules: thin ``nn.Module`` wrappers over :mod:`contrastkit.functional`."""

from contrastkit.losses.modules import (
    BarlowTwinsLoss,
    ClipLoss,
    DCLLoss,
    InfoNCELoss,
    NegativeCosineLoss,
    NTXentLoss,
    SigLipLoss,
    SupConLoss,
    VICRegLoss,
)

__all__ = [
    "BarlowTwinsLoss",
    "ClipLoss",
    "DCLLoss",
    "InfoNCELoss",
    "NTXentLoss",
    "NegativeCosineLoss",
    "SigLipLoss",
    "SupConLoss",
    "VICRegLoss",
]
