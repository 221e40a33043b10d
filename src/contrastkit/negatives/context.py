"""Context-window positives for Contrastive Context Prediction (CCP; Wu et al., 2022).

"Unsupervised Context Aware Sentence Representation Pretraining for Multi-lingual
Dense Retrieval": a sentence and a sentence from its local context (at most
``window`` positions away in the same document) are a positive pair; with
language-specific negatives (:class:`contrastkit.negatives.grouped_queue.GroupedQueue`)
and an asymmetric projection head (:class:`contrastkit.nn.asymmetric.AsymmetricProjection`),
the sentence spaces of different languages become isomorphic without bitext.

Status (METHODS #43, PARTIAL; no official code found): the sampler, the grouped
memory bank and the head are implemented and unit-tested; multilingual corpora
and the cross-lingual retrieval benchmarks are not available offline.
"""

from __future__ import annotations

import torch

__all__ = ["context_window_positives"]


def context_window_positives(
    document_ids: torch.Tensor,
    *,
    window: int = 2,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """For each sentence, a random context sentence of the same document.

    Row ``i`` gets an index ``j`` drawn uniformly from
    ``{j : 0 < |i - j| <= window, document_ids[j] == document_ids[i]}``, or
    ``-1`` when that set is empty (a one-sentence document). Sentences are
    expected in document order (positions are row indices), so two neighbouring
    documents need different ids (an id may repeat further away than ``window``);
    all rows are drawn at once, without a Python loop over sentences.

    Args:
        document_ids: ``[N]`` integer id of each sentence's document.
        window: the context half-width ``w >= 1`` (default 2).
        generator: optional ``torch.Generator`` for reproducible draws.

    Returns:
        ``[N]`` int64 indices into the same sentence list (``-1``: no context).

    Raises:
        ValueError: on a tensor that is not ``[N]`` integers, or ``window < 1``.

    Example:
        >>> documents = torch.tensor([0, 0, 0, 1, 2, 2])
        >>> positives = context_window_positives(documents, window=1, generator=torch.Generator().manual_seed(0))
        >>> positives[3].item()  # document 1 has one sentence
        -1
    """
    if not isinstance(document_ids, torch.Tensor) or document_ids.dim() != 1:
        got = tuple(document_ids.shape) if isinstance(document_ids, torch.Tensor) else type(document_ids).__name__
        raise ValueError(f"document_ids: expected an integer tensor of shape [N], got {got}")
    if document_ids.is_floating_point() or document_ids.is_complex():
        raise ValueError(f"document_ids: expected integer ids, got dtype {document_ids.dtype}")
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window: expected an int >= 1, got {window!r}")
    count = document_ids.shape[0]
    device = document_ids.device
    offsets = torch.cat([torch.arange(-window, 0), torch.arange(1, window + 1)]).to(device)  # [2w]
    candidates = torch.arange(count, device=device).unsqueeze(1) + offsets  # [N, 2w]
    inside = (candidates >= 0) & (candidates < count)
    clamped = candidates.clamp(0, max(count - 1, 0))
    valid = inside & (document_ids[clamped] == document_ids.unsqueeze(1))
    # Uniform choice among the valid offsets: the argmax of uniform noise restricted to them.
    noise = torch.rand(candidates.shape, generator=generator, device=generator.device if generator else device)
    noise = noise.to(device).masked_fill(~valid, -1.0)
    choice = noise.argmax(dim=1, keepdim=True)
    picked = candidates.gather(1, choice).squeeze(1)
    return torch.where(valid.any(dim=1), picked, torch.full_like(picked, -1))
