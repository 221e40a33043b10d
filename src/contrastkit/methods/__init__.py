"""Methods: views + encoder + heads + objective + negatives, one small class each."""

from contrastkit.methods.barlow_twins import BarlowTwins
from contrastkit.methods.base import Method, Output, TwoViewMethod
from contrastkit.methods.beclr import BECLR
from contrastkit.methods.byol import BYOL
from contrastkit.methods.directpred import DirectPred
from contrastkit.methods.mixed_barlow_twins import MixedBarlowTwins
from contrastkit.methods.mochi import MoCHi
from contrastkit.methods.moco import MoCo
from contrastkit.methods.obow import OBoW
from contrastkit.methods.registry import (
    METHODS,
    build_method,
    method_names,
    method_options,
)
from contrastkit.methods.sbcl import SBCL
from contrastkit.methods.sepclr import SepCLR
from contrastkit.methods.simclr import SimCLR
from contrastkit.methods.simsiam import SimSiam
from contrastkit.methods.spark import SparK
from contrastkit.methods.supcon import SupCon
from contrastkit.methods.vicreg import VICReg

__all__ = [
    "BYOL", "METHODS", "BarlowTwins", "Method", "MoCo", "Output", "SimCLR", "SimSiam", "SupCon", "TwoViewMethod", "VICReg",
    "build_method", "method_names", "method_options",
]
__all__ += [  # seed-paper components
    "BECLR",
    "DirectPred",
    "MixedBarlowTwins",
    "MoCHi",
    "OBoW",
    "SBCL",
    "SepCLR",
    "SparK",
]
