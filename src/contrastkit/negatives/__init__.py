"""Where negatives come from.

In-batch negatives are the default: the objectives in ``contrastkit.functional``
contrast each row with the other rows of the same batch, and need nothing from
this package. The classes here add negatives beyond the batch, passed to an
objective as ``negatives [K, D]``:

- ``Queue``: a FIFO of keys from past batches (MoCo).
"""

from contrastkit.negatives.queue import Queue

__all__ = ["Queue"]
