"""Pure tensor math: every contrastive objective as a function, no state.

Like :mod:`torch.nn.functional`: no modules, no globals, no I/O. The
InfoNCE-family objectives are thin wrappers over
:func:`contrastive_loss_from_logits`.
"""

from contrastkit.functional.bootstrap import negative_cosine
from contrastkit.functional.contrastive import (
    clip_loss,
    dcl,
    dclw,
    info_nce,
    nt_xent,
    siglip_loss,
    supcon,
    von_mises_weights,
)
from contrastkit.functional.core import contrastive_loss_from_logits
from contrastkit.functional.geometry import alignment, mmd, uniformity
from contrastkit.functional.hierarchical import (
    grouped_nt_xent,
    hierarchical_contrastive,
)
from contrastkit.functional.paired import (
    CACHE_MAX_BYTES,
    default_chunk_size,
    paired_contrastive_loss,
)
from contrastkit.functional.redundancy import barlow_twins, vicreg, vicreg_terms
from contrastkit.functional.tiled import (
    DEFAULT_CHUNK_SIZE,
    NAIVE_MAX_LOGITS_BYTES,
    tiled_contrastive_loss,
    tiled_siglip_loss,
)

__all__ = [
    "CACHE_MAX_BYTES",
    "DEFAULT_CHUNK_SIZE",
    "NAIVE_MAX_LOGITS_BYTES",
    "alignment",
    "barlow_twins",
    "clip_loss",
    "contrastive_loss_from_logits",
    "default_chunk_size",
    "dcl",
    "dclw",
    "grouped_nt_xent",
    "hierarchical_contrastive",
    "info_nce",
    "mmd",
    "negative_cosine",
    "nt_xent",
    "paired_contrastive_loss",
    "siglip_loss",
    "supcon",
    "tiled_contrastive_loss",
    "tiled_siglip_loss",
    "uniformity",
    "vicreg",
    "vicreg_terms",
    "von_mises_weights",
]
