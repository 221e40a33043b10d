r"""Symile (Saporta et al., NeurIPS 2024, "Contrasting with Symile: Simple Model-Agnostic
Representation Learning for Unlimited Modalities") as pure functions of tensors.

Symile contrasts all ``M`` modalities of a tuple at once. Its score is the multilinear
inner product (MIP) of one representation per modality,

.. math::

    \mathrm{MIP}(x^{(1)}, \dots, x^{(M)}) = \sum_{d=1}^{D} \prod_{m=1}^{M} x^{(m)}_d ,

which for ``M = 2`` is the dot product. Each modality in turn is the anchor: row ``i``'s
positive is the MIP of the whole tuple ``i``; its negatives keep the anchor ``x_i`` and
replace its partners (the other ``M - 1`` modalities) by other rows. The loss is the mean
over anchors of the cross-entropy of ``logit_scale * scores``. Because the MIP couples all
modalities, Symile captures higher-order information (e.g. ``c = a XOR b``, where ``c`` is
independent of ``a`` and of ``b`` taken one at a time) that pairwise CLIP losses miss; see
``benchmarks/symile_xor.py``.

Checked against the official code, github.com/rajesh-lab/symile (``symile/loss.py``, the
pip package's ``Symile`` class, general ``M``; ``experiments/losses.py``, the paper's
experiments, written for ``M = 3`` only; ``symile/similarity.py``, ``MIPSimilarity``):

* ``negatives="n"`` (O(N), the official default): for each anchor, each non-anchor
  modality's rows are shuffled by its own, independent random permutation (a fresh
  ``randperm`` per anchor and per partner modality, drawn in modality order); column
  ``j`` of the ``[B, B]`` logits is ``MIP(x_i, y_{pi(j)}, z_{sigma(j)}, ...)``, and the
  diagonal is then overwritten with the positives ``MIP(x_i, y_i, z_i, ...)``. So every
  row sees the same ``B - 1`` shuffled partner tuples, and a shuffled tuple can by chance
  be row ``i``'s own partners (a false negative; the official code accepts this). Both
  official files do exactly this, the package for any ``M >= 2``, the experiments for
  ``M = 3``; here for any ``M >= 2``.
* ``negatives="n_squared"`` (O(N^2) for ``M = 3``): every combination of partner rows,
  ``B^(M-1)`` columns, one of which is the positive. The official code enumerates them by
  rolling the rows (``torch.roll``), recursively for ``M > 3`` in the package; here they
  come in row-major order of the partner indices (a Cartesian product), which is the same
  set of columns in another order, so the cross-entropy is identical.

Deviations from the official code, and why:

* ``generator``: the permutations are drawn from ``generator`` (or torch's global CPU RNG
  when ``None``, as ``torch.randperm`` does in the official code), so a run can be made
  reproducible and tested against a reference.
* ``negatives="n_squared"`` with ``M = 2``: the official recursion fails on a single
  partner modality (it indexes an empty list); here it is the natural ``B^1`` columns,
  i.e. one direction of CLIP per anchor, so the loss equals CLIP's symmetric loss.
* Inputs are not L2-normalised here, as in the official loss: the official models
  normalise each representation before the loss, and so should the caller.
  :func:`pairwise_clip_loss` normalises, because :func:`~contrastkit.functional.contrastive.clip_loss` does.
* :func:`pairwise_clip_loss` is the *mean* of the pairwise CLIP losses; the official
  baseline (``experiments/losses.py``, ``clip``) returns their *sum* (3x the value for
  ``M = 3``, the same minimiser).
* ``B^(M-1)`` grows fast: ``n_squared`` builds a ``[B^(M-1), D]`` product and a
  ``[B, B^(M-1)]`` logit matrix, as the official code does; nothing is tiled.

Missing modalities are not handled by the loss. The official code (``README.md``,
"Missing data"; ``examples/binary_xor_missing.py``; ``experiments/models/symile_m3_model.py``)
handles them in the encoders: a missing input gets a placeholder value (``0.5`` for a
bit, a ``[MISSING]`` token added to the text vocabulary) and the encoder also receives a
binary missingness indicator (concatenated to the input, or a learned
``nn.Embedding(2, hidden)`` concatenated to the pre-projection features), so the
representation of a missing modality is learned; the Symile loss is unchanged.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from contrastkit.functional.contrastive import clip_loss
from contrastkit.utils.checks import Scalar, check_embeddings, check_pair, check_positive_scalar

__all__ = [
    "NEGATIVE_SAMPLING",
    "multilinear_inner_product",
    "symile_loss",
    "pairwise_clip_loss",
    "symile_zero_shot_scores",
]

#: The negative-sampling strategies of :func:`symile_loss` (the official code's names).
NEGATIVE_SAMPLING = ("n", "n_squared")


def _check_modalities(name: str, embeddings: object, *, min_count: int, min_rows: int = 1) -> list[torch.Tensor]:
    """``embeddings`` as a list when it is a sequence of ``>= min_count`` paired ``[B, D]`` batches; else a clear error."""
    if isinstance(embeddings, torch.Tensor) or not isinstance(embeddings, Sequence):
        got = (
            f"a tensor of shape {tuple(embeddings.shape)}"
            if isinstance(embeddings, torch.Tensor)
            else type(embeddings).__name__
        )
        raise ValueError(f"{name}: expected a sequence (list or tuple) of [B, D] tensors, got {got}")
    tensors = list(embeddings)
    if len(tensors) < min_count:
        noun = "modality" if min_count == 1 else "modalities"
        raise ValueError(f"{name}: expected at least {min_count} {noun} ([B, D] tensors), got {len(tensors)}")
    check_embeddings(f"{name}[0]", tensors[0], min_rows=min_rows)
    for index, tensor in enumerate(tensors[1:], start=1):
        check_pair(f"{name}[0]", tensors[0], f"{name}[{index}]", tensor, min_rows=min_rows)
    return tensors


def _product(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The element-wise product of same-shape tensors (out of place, so autograd keeps every factor)."""
    result = tensors[0]
    for tensor in tensors[1:]:
        result = result * tensor
    return result


def multilinear_inner_product(*embeddings: torch.Tensor) -> torch.Tensor:
    r"""The multilinear inner product of paired rows: ``MIP[b] = sum_d prod_m x_m[b, d]``.

    For two inputs this is the row-wise dot product; for three, ``sum_d a_bd b_bd c_bd``.

    Args:
        *embeddings: ``M >= 2`` tensors ``[B, D]``, passed as separate arguments, row ``b``
            of each belonging to tuple ``b``.

    Returns:
        ``[B]``: one MIP per row.

    Example:
        >>> a, b, c = torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 8)
        >>> multilinear_inner_product(a, b, c).shape
        torch.Size([4])
    """
    if len(embeddings) == 1 and isinstance(embeddings[0], (list, tuple)):
        raise ValueError(
            "embeddings: expected the tensors as separate arguments (multilinear_inner_product(a, b, c)), "
            f"got one {type(embeddings[0]).__name__}; unpack it with *"
        )
    tensors = _check_modalities("embeddings", embeddings, min_count=2)
    return _product(tensors).sum(dim=1)


def _permutation(size: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """A random permutation of ``range(size)`` from ``generator`` (torch's global CPU RNG when ``None``)."""
    source = generator.device if generator is not None else torch.device("cpu")
    return torch.randperm(size, generator=generator, device=source).to(device)


def _logits_n(anchor: torch.Tensor, partners: list[torch.Tensor], generator: torch.Generator | None) -> torch.Tensor:
    """``[B, B]`` MIP scores: shuffled partner tuples as columns, the positives on the diagonal."""
    size = anchor.shape[0]
    shuffled = _product([partner[_permutation(size, generator, anchor.device)] for partner in partners])
    logits = anchor @ shuffled.T
    positives = _product([anchor, *partners]).sum(dim=1)
    diagonal = torch.eye(size, dtype=torch.bool, device=anchor.device)
    return torch.where(diagonal, positives.unsqueeze(1), logits)


def _logits_n_squared(anchor: torch.Tensor, partners: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, B^(M-1)]`` MIP scores over every partner combination, and each row's positive column."""
    size, dim = anchor.shape
    combinations = partners[0]
    for partner in partners[1:]:
        # row-major: column (j_1, ..., j_k) holds prod of partner rows j_1 ... j_k
        combinations = (combinations.unsqueeze(1) * partner.unsqueeze(0)).reshape(-1, dim)
    logits = anchor @ combinations.T
    stride = sum(size**power for power in range(len(partners)))  # index of (i, ..., i) is i * stride
    targets = torch.arange(size, device=anchor.device) * stride
    return logits, targets


def symile_loss(
    embeddings: Sequence[torch.Tensor],
    logit_scale: Scalar,
    *,
    negatives: str = "n",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""The Symile loss: the mean over anchor modalities of an InfoNCE on multilinear inner products.

    For anchor modality ``m`` with partners ``P = {1..M} \ {m}``, row ``i`` is scored
    against a set of partner tuples ``J``:

    .. math::

        \ell_m = \frac{1}{B} \sum_i -\log
            \frac{\exp(t\, \mathrm{MIP}(x^{(m)}_i, x^{(P)}_{i}))}
                 {\sum_{j \in J} \exp(t\, \mathrm{MIP}(x^{(m)}_i, x^{(P)}_{j}))},
        \qquad L = \frac{1}{M} \sum_m \ell_m

    * ``negatives="n"`` (O(N), official default): ``J`` is the positive and ``B - 1``
      shuffled tuples, each partner modality permuted independently (the official O(N)
      sampling; a shuffled tuple may by chance equal the positive).
    * ``negatives="n_squared"``: ``J`` is every combination of partner rows
      (``B^(M-1)`` columns, O(N^2) for ``M = 3``).

    See the module docstring for the official code this follows and the deviations.

    Args:
        embeddings: ``M >= 2`` paired ``[B, D]`` batches, one per modality, ``B >= 2``;
            used as given (the paper L2-normalises them first).
        logit_scale: the multiplier ``t > 0``, already exponentiated (the paper learns
            ``log t`` as CLIP does); a float or 1-element tensor, which keeps its gradient.
        negatives: ``"n"`` (default) or ``"n_squared"``.
        generator: the ``torch.Generator`` for the ``"n"`` permutations; ``None`` uses
            torch's global CPU RNG. Unused by ``"n_squared"``.

    Returns:
        The scalar loss.

    Example:
        >>> reps = [F.normalize(torch.randn(8, 16), dim=1) for _ in range(3)]
        >>> loss = symile_loss(reps, logit_scale=1 / 0.07, generator=torch.Generator().manual_seed(0))
        >>> loss.shape
        torch.Size([])
    """
    check_positive_scalar("logit_scale", logit_scale)
    if negatives not in NEGATIVE_SAMPLING:
        raise ValueError(f"negatives: expected one of {', '.join(map(repr, NEGATIVE_SAMPLING))}, got {negatives!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator: expected a torch.Generator or None, got {type(generator).__name__}")
    tensors = _check_modalities("embeddings", embeddings, min_count=2, min_rows=2)
    labels = torch.arange(tensors[0].shape[0], device=tensors[0].device)
    losses = []
    for index, anchor in enumerate(tensors):
        partners = [tensor for other, tensor in enumerate(tensors) if other != index]
        if negatives == "n":
            logits, targets = _logits_n(anchor, partners, generator), labels
        else:
            logits, targets = _logits_n_squared(anchor, partners)
        losses.append(F.cross_entropy(logit_scale * logits, targets))
    return torch.stack(losses).mean()


def pairwise_clip_loss(embeddings: Sequence[torch.Tensor], logit_scale: Scalar) -> torch.Tensor:
    """The pairwise-CLIP baseline: the mean of CLIP's symmetric loss over all pairs of modalities.

    Each pair ``(m, n)``, ``m < n``, contributes
    :func:`contrastkit.functional.contrastive.clip_loss` (cosine similarity: inputs are
    L2-normalised there). The official baseline sums the pairs instead (module docstring).

    Args:
        embeddings: ``M >= 2`` paired ``[B, D]`` batches, one per modality, ``B >= 2``.
        logit_scale: the multiplier ``t > 0``, already exponentiated; a float or
            1-element tensor, which keeps its gradient.

    Returns:
        The scalar loss, the mean over the ``M (M - 1) / 2`` pairs.

    Example:
        >>> reps = [torch.randn(8, 16) for _ in range(3)]
        >>> pairwise_clip_loss(reps, logit_scale=1 / 0.07).shape
        torch.Size([])
    """
    check_positive_scalar("logit_scale", logit_scale)
    tensors = _check_modalities("embeddings", embeddings, min_count=2, min_rows=2)
    losses = [clip_loss(a, b, logit_scale) for a, b in itertools.combinations(tensors, 2)]
    return torch.stack(losses).mean()


def symile_zero_shot_scores(query_parts: Sequence[torch.Tensor], candidates: torch.Tensor) -> torch.Tensor:
    r"""Zero-shot scores of candidates for the missing modality: ``S[b, c] = MIP(q_1[b], ..., q_k[b], r_c)``.

    For two query modalities this is ``(r_a ⊙ r_b) · r_c``: the element-wise product of the
    query's representations, dotted with each candidate (the official ``MIPSimilarity``).
    ``argmax`` over ``c`` predicts the missing modality.

    Args:
        query_parts: ``k >= 1`` paired ``[B, D]`` batches, the known modalities of ``B``
            queries.
        candidates: ``[C, D]`` representations of the candidate values of the missing
            modality.

    Returns:
        ``[B, C]`` scores.

    Example:
        >>> r_a, r_b, r_c = torch.randn(5, 8), torch.randn(5, 8), torch.randn(2, 8)
        >>> symile_zero_shot_scores([r_a, r_b], r_c).shape
        torch.Size([5, 2])
    """
    tensors = _check_modalities("query_parts", query_parts, min_count=1)
    check_embeddings("candidates", candidates, dim=tensors[0].shape[1])
    return _product(tensors) @ candidates.T
