"""The metrics of generated text from Su & Collier (2022): isotropy, repetition (rep-n), diversity.

"Contrastive Search Is What You Need For Neural Text Generation" (Su & Collier, TMLR 2023)
measures a language model's representation space and its generations with these; the
decoding loops themselves are :mod:`contrastkit.eval.decoding`. All three follow the paper's
code (yxuansu/Contrastive_Search_Is_What_You_Need and yxuansu/SimCTG):

- ``isotropy``: ``1 - mean_{i != j} cos(h_i, h_j)`` over a sequence's last-layer token
  states; across sequences the reference pools all pairs (``average="pairs"``).
- ``repetition`` (rep-n): ``1 - |unique n-grams| / |n-grams|``, counts summed over sequences.
- ``diversity``: ``prod_{n=2..4} (1 - rep-n)``.

Values are fractions in ``[0, 1]``; the papers print them multiplied by 100.

Example:
    >>> repetition([1, 2, 1, 2, 1, 2], n=2)
    0.6
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F

# sequence_isotropy runs the model once under the decoders' calling convention and checks.
from contrastkit.eval.decoding import _CallingConvention, _check_prompt, _inference_mode, _position_ids

__all__ = ["isotropy", "sequence_isotropy", "repetition", "diversity"]


def _pairwise_cosine_sums(states: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: the sum of ``cos(h_i, h_j)`` over ordered pairs ``i != j`` of unmasked tokens,
    and the number of such pairs. ``states [B, T, D]``, ``mask [B, T]`` boolean."""
    unit = F.normalize(states.detach().to(torch.promote_types(states.dtype, torch.float32)), dim=-1)
    unit = unit.masked_fill(~mask[..., None], 0.0)  # padding adds nothing to the sums
    # sum_{i,j} cos = ||sum_i u_i||^2; the diagonal adds one per token whose vector is non-zero.
    total = unit.sum(dim=1).pow(2).sum(dim=-1)
    diagonal = unit.pow(2).sum(dim=(1, 2))
    tokens = mask.sum(dim=1).to(total.dtype)
    return total - diagonal, tokens * (tokens - 1)


def isotropy(
    hidden_states: torch.Tensor | Sequence[torch.Tensor],
    *,
    average: Literal["pairs", "sequences"] = "pairs",
) -> float:
    """Isotropy of token representations: ``1 - mean_{i != j} cos(h_i, h_j)`` (Su & Collier).

    Within a sequence the mean runs over ordered token pairs ``i != j``. Across sequences the
    reference (``isotropy_analysis/compute_language_model_isotropy.py``) pools every pair of
    every sequence, so long sequences weigh more: ``average="pairs"``. ``average="sequences"``
    takes the plain mean of the per-sequence scores. Sequences of one token have no pair:
    they add nothing to ``"pairs"`` and are skipped by ``"sequences"``. A zero vector has
    cosine 0 with everything.

    About 1 means isotropic (near-orthogonal states), 0 means all states point one way.

    Args:
        hidden_states: one sequence ``[T, D]``, a padding-free batch ``[N, T, D]``, or a list
            of ``[T_i, D]`` tensors.
        average: how sequences are combined, ``"pairs"`` (reference) or ``"sequences"``.

    Returns:
        The isotropy in ``[0, 2]`` (``> 1`` only if states point in opposite directions).

    Example:
        >>> isotropy(torch.eye(4))
        1.0
    """
    if average not in ("pairs", "sequences"):
        raise ValueError(f"average: expected 'pairs' or 'sequences', got {average!r}")
    if isinstance(hidden_states, torch.Tensor):
        if hidden_states.dim() == 2:
            sequences: list[torch.Tensor] = [hidden_states]
        elif hidden_states.dim() == 3:
            sequences = list(hidden_states)
        else:
            raise ValueError(f"hidden_states: expected [T, D] or [N, T, D], got shape {tuple(hidden_states.shape)}")
    else:
        sequences = list(hidden_states)
    if not sequences:
        raise ValueError("hidden_states: expected at least one sequence, got none")
    cosine_sums, pair_counts = [], []
    for index, states in enumerate(sequences):
        if not isinstance(states, torch.Tensor) or states.dim() != 2 or not states.is_floating_point():
            got = f"shape {tuple(states.shape)}, dtype {states.dtype}" if isinstance(states, torch.Tensor) else type(states).__name__
            raise ValueError(f"hidden_states[{index}]: expected a float tensor [T, D], got {got}")
        if not torch.isfinite(states).all():
            raise ValueError(f"hidden_states[{index}]: expected finite values, got NaN/inf")
        cosine_sum, pairs = _pairwise_cosine_sums(states[None], torch.ones(1, states.shape[0], dtype=torch.bool, device=states.device))
        cosine_sums.append(cosine_sum.cpu())
        pair_counts.append(pairs.cpu())
    return _combine_isotropy(torch.cat(cosine_sums), torch.cat(pair_counts), average)


def _combine_isotropy(cosine_sums: torch.Tensor, pair_counts: torch.Tensor, average: str) -> float:
    if not bool((pair_counts > 0).any()):
        raise ValueError("hidden_states: expected a sequence of at least 2 tokens, got only single-token sequences")
    if average == "pairs":
        return float(1.0 - cosine_sums.sum() / pair_counts.sum())
    has_pairs = pair_counts > 0
    return float((1.0 - cosine_sums[has_pairs] / pair_counts[has_pairs]).mean())


def sequence_isotropy(
    model: Any,
    input_ids: torch.Tensor,
    *,
    attention_mask: torch.Tensor | None = None,
    average: Literal["pairs", "sequences"] = "pairs",
) -> float:
    """Isotropy of a causal LM's last-layer states (``out.hidden_states[-1]``) on given text.

    Runs ``model(input_ids=..., attention_mask=..., output_hidden_states=True)`` once under
    ``torch.no_grad()`` in eval mode (training flags restored) and scores each row's unpadded
    tokens with :func:`isotropy`. The paper reports about 0.25 for GPT-2 small and 0.6-0.8
    for larger LMs.

    Args:
        model: a causal LM with the Hugging Face calling convention.
        input_ids: ``[B, T]`` token ids (one text per row).
        attention_mask: ``[B, T]``, 0 marks padding (either side); ``None``: all tokens.
        average: ``"pairs"`` (reference) or ``"sequences"``, as in :func:`isotropy`.

    Example:
        >>> sequence_isotropy(model, tokenizer(texts, return_tensors="pt", padding=True).input_ids)
    """
    if average not in ("pairs", "sequences"):
        raise ValueError(f"average: expected 'pairs' or 'sequences', got {average!r}")
    # Scoring allows padding on either side; only the decoding loops need it on the left.
    input_ids, mask = _check_prompt(input_ids, attention_mask, require_left_padding=False)
    kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": mask.long(), "output_hidden_states": True}
    if _CallingConvention(model).pass_positions:
        kwargs["position_ids"] = _position_ids(mask)
    with _inference_mode(model):
        out = model(**kwargs)
    if getattr(out, "hidden_states", None) is None:
        raise ValueError("model: expected .hidden_states in its output when called with output_hidden_states=True")
    cosine_sums, pair_counts = _pairwise_cosine_sums(out.hidden_states[-1], mask)
    return _combine_isotropy(cosine_sums.cpu(), pair_counts.cpu(), average)


def _as_sequences(tokens: Any) -> list[list[Hashable]]:
    """One sequence or a list of sequences (lists, tuples or 1-D/2-D tensors) as lists."""
    if isinstance(tokens, torch.Tensor):
        if tokens.dim() not in (1, 2):
            raise ValueError(f"tokens: expected a 1-D or 2-D tensor, got shape {tuple(tokens.shape)}")
        tokens = tokens.tolist()
    if isinstance(tokens, (str, bytes)) or not isinstance(tokens, Sequence):
        raise ValueError(f"tokens: expected a list of token ids or a list of such lists, got {type(tokens).__name__}")
    if len(tokens) == 0:
        raise ValueError("tokens: expected at least one token, got an empty list")
    nested = [isinstance(item, (list, tuple, torch.Tensor)) for item in tokens]
    if all(nested):
        return [item.tolist() if isinstance(item, torch.Tensor) else list(item) for item in tokens]
    if any(nested):
        raise ValueError("tokens: expected either a flat list of token ids or a list of lists, got a mix")
    return [list(tokens)]


def _ngram_counts(sequences: list[list[Hashable]], n: int, match_simctg: bool) -> tuple[int, int]:
    unique, total = 0, 0
    for sequence in sequences:
        count = len(sequence) - n + 1
        if match_simctg:
            count -= 1  # SimCTG's eval_text loops `while end_idx < len(tokens)`: it skips the last n-gram
        ngrams = [tuple(sequence[i : i + n]) for i in range(max(count, 0))]
        unique += len(set(ngrams))
        total += len(ngrams)
    return unique, total


def repetition(tokens: Sequence[Hashable] | Sequence[Sequence[Hashable]], n: int, *, match_simctg: bool = False) -> float:
    """rep-n: the share of repeated n-grams, ``1 - |unique n-grams| / |n-grams|``.

    As in SimCTG's ``measure_repetition_and_diversity``, n-grams are counted inside each
    sequence (unique within that sequence) and the counts are summed over sequences before
    the ratio is taken, so long sequences weigh more. SimCTG's loop drops the last n-gram of
    every sequence; ``match_simctg=True`` does the same, to compare with published numbers.

    Args:
        tokens: one sequence of tokens (ids, or any hashable items such as words) or a list
            of sequences.
        n: the n-gram length, ``>= 1``.
        match_simctg: reproduce the reference's off-by-one.

    Returns:
        rep-n in ``[0, 1)`` (the paper prints it times 100).

    Example:
        >>> repetition([1, 2, 1, 2, 1], 2)  # bigrams 12 21 12 21: 2 unique of 4
        0.5
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected an integer >= 1, got {n!r}")
    unique, total = _ngram_counts(_as_sequences(tokens), n, match_simctg)
    if total == 0:
        raise ValueError(f"tokens: expected sequences long enough to hold a {n}-gram, got none")
    return 1.0 - unique / total


def diversity(tokens: Sequence[Hashable] | Sequence[Sequence[Hashable]], *, match_simctg: bool = False) -> float:
    """Diversity: ``prod_{n=2..4} (1 - rep-n)`` (SimCTG; Su & Collier), in ``(0, 1]``.

    Args:
        tokens: one sequence or a list of sequences, as in :func:`repetition`.
        match_simctg: reproduce the reference's dropped last n-gram (see :func:`repetition`).

    Example:
        >>> diversity([1, 2, 3, 4, 5])
        1.0
    """
    sequences = _as_sequences(tokens)
    result = 1.0
    for n in (2, 3, 4):
        result *= 1.0 - repetition(sequences, n, match_simctg=match_simctg)
    return result
