"""Where negatives come from.

In-batch negatives are the default: the objectives in ``contrastkit.functional``
contrast each row with the other rows of the same batch, and need nothing from
this package. The classes here add negatives beyond the batch, passed to an
objective as ``negatives [K, D]``:

- ``Queue``: a FIFO of keys from past batches (MoCo, Contriever, CoCoSoDa).
- ``GroupedQueue``: one FIFO per group, e.g. per language (CCP's language-specific banks).
- ``false_negative_mask``: in-batch candidates a frozen scorer finds too similar to the
  anchor, dropped from the denominator (MultiCSR).
- ``DebiasedPairSampler``: inverse-propensity-weighted positives and hard negatives (DebCSE).
- ``context_window_positives``: neighbouring sentences of the same document (CCP).
- ``mochi_negatives``: per-query synthetic hard negatives mixed from the hardest queue entries (MoCHi).
- ``halp_positives``: extra positives moved along the sphere towards a nearby prototype (HaLP).
- ``DyCEMemory``: a partitioned memory whose nearest rows become extra positives (BECLR).
- ``subclass_labels``: balanced subclasses of each class, the positives of SBCL;
  ``clustering`` holds the k-means++ / spherical k-means these three share.
- ``gather``: the batches of every process under data parallelism, with a
  gradient policy (``none``, ``no_grad``, ``with_grad``, ``local_loss``) whose
  scale is stated against DDP's gradient averaging (``docs/scaling.md``).
"""

from contrastkit.negatives.context import context_window_positives
from contrastkit.negatives.debiased import DebiasedPairSampler
from contrastkit.negatives.dyce import DyCEMemory
from contrastkit.negatives.false_negatives import (
    false_negative_mask,
    false_negative_weights,
    masking_rate,
)
from contrastkit.negatives.gather import (
    POLICIES,
    gather,
    is_distributed,
    local_positive_mask,
    rank,
    rank_slice,
    world_size,
)
from contrastkit.negatives.grouped_queue import GroupedQueue
from contrastkit.negatives.halp import (
    halp_positive_logits,
    halp_positives,
    kmeans_prototypes,
)
from contrastkit.negatives.hard_mixing import mochi_negatives
from contrastkit.negatives.queue import Queue
from contrastkit.negatives.subclasses import balanced_kmeans, subclass_labels

__all__ = [
    "context_window_positives",
    "DebiasedPairSampler",
    "false_negative_mask",
    "false_negative_weights",
    "gather",
    "GroupedQueue",
    "is_distributed",
    "local_positive_mask",
    "masking_rate",
    "POLICIES",
    "Queue",
    "rank",
    "rank_slice",
    "world_size",
]
__all__ += [  # seed-paper components
    "DyCEMemory",
    "balanced_kmeans",
    "halp_positive_logits",
    "halp_positives",
    "kmeans_prototypes",
    "mochi_negatives",
    "subclass_labels",
]
