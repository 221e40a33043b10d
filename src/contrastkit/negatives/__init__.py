"""Where negatives come from.

In-batch negatives are the default: the objectives in ``contrastkit.functional``
contrast each row with the other rows of the same batch, and need nothing from
this package. The classes here add negatives beyond the batch, passed to an
objective as ``negatives [K, D]``:

- ``Queue``: a FIFO of keys from past batches (MoCo).
- ``gather``: the batches of every process under data parallelism, with a
  gradient policy (``none``, ``no_grad``, ``with_grad``, ``local_loss``) whose
  scale is stated against DDP's gradient averaging (``docs/scaling.md``).
"""

from contrastkit.negatives.gather import (
    POLICIES,
    gather,
    is_distributed,
    local_positive_mask,
    rank,
    rank_slice,
    world_size,
)
from contrastkit.negatives.queue import Queue

__all__ = [
    "POLICIES",
    "Queue",
    "gather",
    "is_distributed",
    "local_positive_mask",
    "rank",
    "rank_slice",
    "world_size",
]
