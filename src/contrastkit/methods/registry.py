"""Methods registered by name; recipes and the CLI refer to these names only.

Which data a method trains on is the method's own declaration (``Method.modalities``,
``Method.two_tensor_views``); :mod:`contrastkit.modalities` matches the two.
"""

from __future__ import annotations

from torch import nn

from contrastkit.methods.audio_sheet import AudioSheetCLIP
from contrastkit.methods.autotcl import AutoTCL
from contrastkit.methods.barlow_twins import BarlowTwins
from contrastkit.methods.base import Method
from contrastkit.methods.beclr import BECLR
from contrastkit.methods.byol import BYOL
from contrastkit.methods.clip import CLIP, LiT, SigLIP
from contrastkit.methods.cocosoda import CoCoSoDa
from contrastkit.methods.contriever import Contriever
from contrastkit.methods.directpred import DirectPred
from contrastkit.methods.fdt import FDT
from contrastkit.methods.graph import BGRL, DSLA, GRACE, GraphCL
from contrastkit.methods.m3col import M3CoL
from contrastkit.methods.mixed_barlow_twins import MixedBarlowTwins
from contrastkit.methods.mnrl import MultipleNegativesRanking
from contrastkit.methods.mochi import MoCHi
from contrastkit.methods.moco import MoCo
from contrastkit.methods.obow import OBoW
from contrastkit.methods.pairwise_mer import PairwiseMER
from contrastkit.methods.recommendation import LightGCL, LightGCNBPR, SimGCL
from contrastkit.methods.sbcl import SBCL
from contrastkit.methods.sepclr import SepCLR
from contrastkit.methods.simclr import SimCLR
from contrastkit.methods.simcse import SimCSE
from contrastkit.methods.simsiam import SimSiam
from contrastkit.methods.spark import SparK
from contrastkit.methods.supcon import SupCon
from contrastkit.methods.symile import PairwiseCLIP, Symile
from contrastkit.methods.ts2vec import TS2Vec
from contrastkit.methods.vicreg import VICReg
from contrastkit.utils.registry import Registry, keyword_options

METHODS: Registry[type[Method]] = Registry("method", {
    "simclr": SimCLR,
    "moco": MoCo,
    "byol": BYOL,
    "simsiam": SimSiam,
    "barlow-twins": BarlowTwins,
    "vicreg": VICReg,
    "supcon": SupCon,
    # Seed-paper components (issue 6; docs/methods.md): variants of the methods above, and new ones.
    "mochi": MoCHi,
    "mixed-barlow-twins": MixedBarlowTwins,
    "directpred": DirectPred,
    "obow": OBoW,
    "beclr": BECLR,
    "sbcl": SBCL,
    "sepclr": SepCLR,
    "spark": SparK,
    "ts2vec": TS2Vec,
    "autotcl": AutoTCL,
    "mnrl": MultipleNegativesRanking,
    "simcse": SimCSE,
    "contriever": Contriever,
    "cocosoda": CoCoSoDa,
    "grace": GRACE,
    "bgrl": BGRL,
    "graphcl": GraphCL,
    "dsla": DSLA,
    "lightgcn": LightGCNBPR,
    "simgcl": SimGCL,
    "lightgcl": LightGCL,
    # Image–text contrast (issue 16; docs/multimodal.md).
    "clip": CLIP,
    "siglip": SigLIP,
    "lit": LiT,
    "symile": Symile,  # tuples of any number of modalities (issue 16)
    "pairwise-clip": PairwiseCLIP,
    "audio-sheet-clip": AudioSheetCLIP,  # audio <-> sheet-music snippets, optional per-modality pretraining (#11)
    "fdt": FDT,
    "m3col": M3CoL,
    "pairwise-mer": PairwiseMER,
})


def method_names() -> list[str]:
    """Names accepted by :func:`build_method`, sorted."""
    return METHODS.names()


def method_class(name: str) -> type[Method]:
    """The class registered under ``name``; an unknown name raises ``ValueError``."""
    return METHODS[name]


def method_options(name: str) -> dict[str, object]:
    """The keyword options of a method (its own and those it forwards to its parents) and their defaults."""
    return keyword_options(METHODS[name], stop=Method)


def build_method(name: str, encoder: nn.Module, views: tuple[nn.Module, ...], **options: object) -> Method:
    """Build a registered method; unknown names or options raise ``ValueError``."""
    cls = METHODS[name]
    known = method_options(name)
    unexpected = sorted(set(options) - set(known))
    if unexpected:
        raise ValueError(
            f"method {name!r} got unknown option(s) {unexpected}; expected some of: {', '.join(sorted(known))}"
        )
    return cls(encoder, views, **options)
