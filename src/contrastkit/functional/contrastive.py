"""InfoNCE-family objectives as pure functions.

All of them are thin wrappers over
:func:`contrastkit.functional.core.contrastive_loss_from_logits`: each builds a
logit matrix, a positive mask and (where needed) a validity mask or column
weights. :func:`siglip_loss` is the exception: a pairwise sigmoid loss, not a
softmax over columns.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from contrastkit.functional.core import contrastive_loss_from_logits
from contrastkit.functional.info_nce_kernels import _inverse_scale, _normalize, info_nce_kernel
from contrastkit.functional.labelled_paired import labelled_paired_loss
from contrastkit.functional.paired import paired_contrastive_loss
from contrastkit.functional.symmetric_paired import symmetric_paired_loss
from contrastkit.functional.tiled import ChunkSize, resolve_chunk_size, tiled_siglip_loss
from contrastkit.utils.checks import (
    Scalar,
    check_embeddings,
    check_finite_scalar,
    check_labels,
    check_pair,
    check_positive_scalar,
    check_reduction,
)

__all__ = [
    "info_nce",
    "nt_xent",
    "supcon",
    "dcl",
    "dclw",
    "von_mises_weights",
    "clip_loss",
    "siglip_loss",
]


def info_nce(
    query: torch.Tensor,
    key: torch.Tensor,
    *,
    negatives: torch.Tensor | None = None,
    temperature: Scalar = 0.1,
    symmetric: bool = False,
    labels: torch.Tensor | None = None,
    pos_mask: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
    normalize: bool = True,
    reduction: str = "mean",
    chunk_size: ChunkSize = "auto",
) -> torch.Tensor:
    r"""InfoNCE (van den Oord et al., 2018, "Representation Learning with Contrastive Predictive Coding").

    Columns are the ``M`` keys followed by the ``K`` extra negatives; the logits are
    ``l_ij = sim(q_i, c_j) / temperature`` with ``sim`` the cosine similarity
    (``normalize=True``, inputs are L2-normalised) or the dot product
    (``normalize=False``). For each query row:

    .. math::

        \ell_i = -\sum_j p_{ij} \log
            \frac{w_{ij} \exp(l_{ij})}{\sum_k w_{ik} \exp(l_{ik})}

    with ``p`` uniform over the positives of row ``i`` (or the normalised float
    ``pos_mask`` row) and ``w`` the column ``weights`` (default 1).

    Positives:

    * default: paired rows, ``query[i]`` with ``key[i]`` (requires ``M == B``);
    * ``labels [B]``: every key ``j`` with ``labels[j] == labels[i]`` (keys are
      paired with queries, so ``M == B``; the negatives are never positives);
    * ``pos_mask``: ``[B, M]`` or ``[B, M + K]`` bool mask or non-negative float
      weights (float rows are normalised to a target distribution; a ``[B, M]``
      mask gives the extra negatives weight 0).

    ``labels`` and ``pos_mask`` are mutually exclusive. ``symmetric=True`` averages
    with the key-to-query direction (logits transposed, positives and weights
    transposed, so every key then needs a positive); it is defined only when
    ``negatives`` is ``None``, and with
    ``reduction='none'`` only when ``M == B``. A zero column weight removes that
    column from the denominator (e.g. self-similarity when ``key is query``).

    Args:
        query: ``[B, D]`` anchors.
        key: ``[M, D]`` keys (positives and in-batch negatives).
        negatives: optional ``[K, D]`` extra negatives (a queue, a memory bank).
        temperature: ``tau > 0`` (default 0.1); a float or a 1-element tensor
            (learnable temperatures keep their gradient).
        symmetric: also average the key-to-query direction (default ``False``).
        labels: optional ``[B]`` integer class labels.
        pos_mask: optional ``[B, M]`` or ``[B, M + K]`` positives.
        weights: optional ``[B, M + K]`` non-negative column weights in the
            denominator.
        normalize: L2-normalise ``query``, ``key`` and ``negatives`` (default ``True``).
        reduction: ``'mean'`` (default), ``'sum'`` or ``'none'`` (``[B]``).
        chunk_size: ``"auto"`` (default): with paired positives and no
            ``weights``, the fused one-positive kernel
            (:func:`contrastkit.functional.paired.paired_contrastive_loss`: cached
            while the logits fit 64 MiB, tiled beyond); otherwise the naive path (one
            ``[B, M + K]`` logit matrix) while it fits
            :data:`contrastkit.functional.tiled.NAIVE_MAX_LOGITS_BYTES` (256 MiB) and
            the tiled path (block-wise log-sum-exp, recomputation in backward, memory
            linear in the batch) with blocks of
            :data:`~contrastkit.functional.tiled.DEFAULT_CHUNK_SIZE` beyond it.
            ``None``: always naive (plain autograd; supports double backward); a
            positive ``int``: always tiled with that block size. All give the same
            value and gradients to float tolerance. The tiled path does not
            differentiate through ``pos_mask`` / ``weights`` (``"auto"`` stays naive
            when either requires grad).

    Returns:
        The loss: a scalar, or ``[B]`` for ``reduction='none'``.

    Raises:
        ValueError: on bad shapes, non-finite values, ``temperature <= 0``, fewer
            than two columns (no negative), a row without a positive, or
            conflicting options.

    Example:
        >>> query, key = torch.randn(8, 32), torch.randn(8, 32)
        >>> loss = info_nce(query, key, temperature=0.1)
        >>> loss_with_queue = info_nce(query, key, negatives=torch.randn(64, 32))
    """
    check_reduction(reduction)
    check_positive_scalar("temperature", temperature)
    check_embeddings("query", query)
    dim = query.shape[1]
    check_embeddings("key", key, dim=dim)
    if negatives is not None:
        check_embeddings("negatives", negatives, dim=dim)
    batch, num_keys = query.shape[0], key.shape[0]
    num_negatives = 0 if negatives is None else negatives.shape[0]
    columns = num_keys + num_negatives
    if columns < 2:
        raise ValueError(
            f"info_nce: expected at least 2 candidate columns (a positive and a negative), got {num_keys} key(s) "
            f"and {num_negatives} negative(s); use a batch of at least 2 or pass negatives"
        )
    if labels is not None and pos_mask is not None:
        raise ValueError("info_nce: expected at most one of labels and pos_mask, got both")
    if symmetric and negatives is not None:
        raise ValueError("info_nce: symmetric=True is defined only without extra negatives, got negatives")
    if symmetric and reduction == "none" and num_keys != batch:
        raise ValueError(
            f"info_nce: symmetric=True with reduction='none' needs as many keys as queries, got B={batch}, M={num_keys}"
        )

    _check_positive_spec(batch, num_keys, num_negatives, labels, pos_mask, weights)
    return info_nce_kernel(query, key, negatives, temperature, symmetric, labels, pos_mask, weights, normalize,
                           reduction, chunk_size)  # fmt: skip


def _check_positive_spec(
    batch: int,
    num_keys: int,
    num_negatives: int,
    labels: torch.Tensor | None,
    pos_mask: torch.Tensor | None,
    weights: torch.Tensor | None,
) -> None:
    """Shape checks of :func:`info_nce`'s positives and weights, shared by the naive and tiled paths."""
    columns = num_keys + num_negatives
    if pos_mask is None:
        if num_keys != batch:
            raise ValueError(
                f"key: expected as many rows as query ({batch}) for paired positives, got {num_keys} rows; "
                "pass pos_mask for unpaired keys"
            )
        if labels is not None:
            check_labels("labels", labels, batch)
    elif (
        not isinstance(pos_mask, torch.Tensor)
        or pos_mask.dim() != 2
        or pos_mask.shape[0] != batch
        or pos_mask.shape[1] not in (num_keys, columns)
    ):
        got = tuple(pos_mask.shape) if isinstance(pos_mask, torch.Tensor) else type(pos_mask).__name__
        raise ValueError(f"pos_mask: expected shape [{batch}, {num_keys}] or [{batch}, {columns}], got {got}")
    if weights is not None and (not isinstance(weights, torch.Tensor) or weights.shape != (batch, columns)):
        got = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__
        raise ValueError(f"weights: expected shape [{batch}, {columns}] (queries x (keys + negatives)), got {got}")


def nt_xent(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    temperature: Scalar = 0.5,
    *,
    normalize: bool = True,
    chunk_size: ChunkSize = "auto",
) -> torch.Tensor:
    r"""NT-Xent, the SimCLR loss (Chen et al., 2020, "A Simple Framework for Contrastive Learning of Visual Representations").

    The ``2N`` embeddings ``z = [z_a; z_b]`` are compared with each other; for row
    ``i`` the positive is the other view ``p(i)`` of the same sample and the
    ``2N - 2`` other embeddings are the negatives (self is excluded):

    .. math::

        \ell_i = -\log \frac{\exp(\mathrm{sim}(z_i, z_{p(i)}) / \tau)}
                            {\sum_{k \ne i} \exp(\mathrm{sim}(z_i, z_k) / \tau)},
        \qquad L = \frac{1}{2N} \sum_{i=1}^{2N} \ell_i

    with ``sim`` the cosine similarity (inputs are L2-normalised unless
    ``normalize=False``, then the dot product).

    Args:
        z_a: ``[N, D]`` first views, ``N >= 2``.
        z_b: ``[N, D]`` second views, paired with ``z_a`` row by row.
        temperature: ``tau > 0`` (default 0.5, SimCLR's CIFAR-10 value).
        normalize: L2-normalise the embeddings (default ``True``).
        chunk_size: ``"auto"`` (default; the fused symmetric kernel, one logit block for both directions, cached
            while the ``[2N, 2N]`` logits fit 64 MiB, tiled beyond), ``None`` (naive)
            or a positive ``int`` (tiled, that block size); see :func:`info_nce`.

    Returns:
        The scalar loss, the mean over the ``2N`` rows.

    Example:
        >>> z_a, z_b = torch.randn(8, 32), torch.randn(8, 32)
        >>> loss = nt_xent(z_a, z_b, temperature=0.5)
        >>> loss.shape
        torch.Size([])
    """
    check_positive_scalar("temperature", temperature)
    check_pair("z_a", z_a, "z_b", z_b, min_rows=2)
    n = z_a.shape[0]
    z = _normalize(torch.cat([z_a, z_b], dim=0), normalize)
    index = torch.arange(2 * n, device=z.device)
    partner = (index + n) % (2 * n)
    if chunk_size is not None:
        scale = _inverse_scale(temperature)
        return paired_contrastive_loss(z, z, scale, partner, exclude=index, chunk_size=chunk_size).mean()
    # Single positive per row: plain cross-entropy with the self-similarity masked out is the
    # same loss as the general core, without its [2N, 2N] mask temporaries (~3x less memory).
    logits = (z @ z.T / temperature).fill_diagonal_(float("-inf"))
    return F.cross_entropy(logits, partner)


def supcon(
    features: torch.Tensor,
    labels: torch.Tensor | None = None,
    temperature: Scalar = 0.1,
    base_temperature: float | None = None,
    *,
    normalize: bool = True,
    chunk_size: ChunkSize = "auto",
) -> torch.Tensor:
    r"""Supervised contrastive loss (Khosla et al., 2020, "Supervised Contrastive Learning").

    The ``L^{sup}_{out}`` form with ``contrast_mode='all'``: every one of the
    ``B * V`` views is an anchor; its positives ``P(i)`` are all other views with
    the same label (``labels=None``: the other views of the same sample, i.e.
    SimCLR with ``V`` views); the denominator runs over all views but itself:

    .. math::

        L = \frac{1}{BV} \sum_i \frac{-s}{|P(i)|} \sum_{p \in P(i)}
            \log \frac{\exp(z_i \cdot z_p / \tau)}{\sum_{a \ne i} \exp(z_i \cdot z_a / \tau)},
        \qquad s = \tau / \tau_{base}

    ``base_temperature`` reproduces the scaling of the official implementation
    (``loss * temperature / base_temperature``, there ``base_temperature=0.07``);
    ``None`` (the default) means ``s = 1`` (no scaling), the paper's formula.

    Args:
        features: ``[B, V, D]`` embeddings, ``B >= 2`` samples, ``V`` views per sample; L2-normalised
            here unless ``normalize=False``.
        labels: optional ``[B]`` integer class labels; ``None`` for self-supervised.
        temperature: ``tau > 0`` (default 0.1).
        base_temperature: ``tau_base > 0`` or ``None`` (default, no scaling).
        normalize: L2-normalise each view (default ``True``).
        chunk_size: ``"auto"`` (default; the fused labelled kernel,
            :func:`contrastkit.functional.labelled_paired.labelled_paired_loss`: cached while the
            ``[BV, BV]`` logits fit 64 MiB, tiled beyond), ``None`` (naive) or a positive ``int``
            (tiled, that block size); see :func:`info_nce`.

    Returns:
        The scalar loss, averaged over the ``B * V`` anchors.

    Raises:
        ValueError: on bad shapes or values, or an anchor without positive (e.g.
            ``V = 1`` and a label seen once in the batch).

    Example:
        >>> features = torch.randn(8, 2, 32)
        >>> labels = torch.randint(0, 3, (8,))
        >>> loss = supcon(features, labels, temperature=0.1)
    """
    check_positive_scalar("temperature", temperature)
    if base_temperature is not None:
        check_positive_scalar("base_temperature", base_temperature)
    if not isinstance(features, torch.Tensor) or features.dim() != 3:
        got = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ValueError(f"features: expected shape [B, V, D] (samples, views, features), got {got}")
    batch, views, dim = features.shape
    if batch < 2 or views < 1:
        raise ValueError(
            f"features: expected at least 2 samples (B >= 2, so that there are negatives) and V >= 1, "
            f"got shape {tuple(features.shape)}"
        )
    # View-major order, as the official code: [view 0 of all samples; view 1; ...].
    flat = features.transpose(0, 1).reshape(views * batch, dim)
    check_embeddings("features (flattened to [B*V, D])", flat)
    if labels is None:
        sample_labels = torch.arange(batch, device=features.device)
    else:
        check_labels("labels", labels, batch)
        sample_labels = labels.to(features.device)
    anchor_labels = sample_labels.repeat(views)
    z = _normalize(flat, normalize)
    if chunk_size is not None:
        _, inverse, counts = torch.unique(anchor_labels, return_inverse=True, return_counts=True)
        lonely = counts[inverse] < 2
        if lonely.any():
            raise ValueError(
                "supcon: every anchor needs a positive (another view, or another sample with its label), got "
                f"{int(lonely.sum())} anchor(s) with none; use V >= 2 or labels seen at least twice"
            )
        # The fused kernel: the one-positive log-sum-exp plus label-summed positives, no [BV, BV] mask.
        index = torch.arange(views * batch, device=z.device)
        loss = labelled_paired_loss(
            z, z, _inverse_scale(temperature), anchor_labels, anchor_labels, exclude=index, chunk_size=chunk_size,
        ).mean()
        if base_temperature is not None:
            loss = loss * (temperature / base_temperature)
        return loss
    logits = z @ z.T / temperature
    not_self = ~torch.eye(views * batch, dtype=torch.bool, device=z.device)
    positives = (anchor_labels.unsqueeze(1) == anchor_labels.unsqueeze(0)) & not_self
    if not positives.any(dim=1).all():
        raise ValueError(
            "supcon: every anchor needs a positive (another view, or another sample with its label), got "
            f"{int((~positives.any(dim=1)).sum())} anchor(s) with none; use V >= 2 or labels seen at least twice"
        )
    loss = contrastive_loss_from_logits(logits, positives, valid_mask=not_self)
    if base_temperature is not None:
        loss = loss * (temperature / base_temperature)
    return loss


def von_mises_weights(z_a: torch.Tensor, z_b: torch.Tensor, sigma: float = 0.5) -> torch.Tensor:
    r"""DCLW positive weights (Yeh et al., 2022): ``w_i = 2 - B * softmax_i(z_a[i] . z_b[i] / sigma)``.

    A von Mises-Fisher weighting: pairs that are already close get a smaller
    weight; the weights average to 1. Inputs are used as given (``dcl`` passes
    L2-normalised embeddings).

    Args:
        z_a: ``[B, D]`` first views.
        z_b: ``[B, D]`` second views.
        sigma: the concentration scale ``sigma > 0`` (default 0.5).

    Returns:
        ``[B]`` weights.

    Example:
        >>> z_a, z_b = F.normalize(torch.randn(8, 32), dim=1), F.normalize(torch.randn(8, 32), dim=1)
        >>> weights = von_mises_weights(z_a, z_b, sigma=0.5)
        >>> weights.shape
        torch.Size([8])
    """
    check_positive_scalar("sigma", sigma)
    check_pair("z_a", z_a, "z_b", z_b)
    return 2 - z_a.shape[0] * torch.softmax((z_a * z_b).sum(dim=1) / sigma, dim=0)


def _dcl_direction(
    z_1: torch.Tensor,
    z_2: torch.Tensor,
    temperature: Scalar,
    weight_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
) -> torch.Tensor:
    n = z_1.shape[0]
    cross = z_1 @ z_2.T / temperature
    within = z_1 @ z_1.T / temperature
    eye = torch.eye(n, dtype=torch.bool, device=z_1.device)
    if weight_fn is not None:
        weights = weight_fn(z_1, z_2)
        if not isinstance(weights, torch.Tensor) or weights.shape != (n,):
            got = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__
            raise ValueError(f"weight_fn: expected it to return shape [{n}], got {got}")
        # The positive is out of the denominator, so scaling its logit weights only the numerator.
        cross = torch.where(eye, cross * weights.unsqueeze(1), cross)
    logits = torch.cat([cross, within], dim=1)
    positives = torch.cat([eye, torch.zeros_like(eye)], dim=1)
    valid = ~torch.cat([eye, eye], dim=1)  # drop the positive and self
    return contrastive_loss_from_logits(logits, positives, valid_mask=valid)


def dcl(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    temperature: Scalar = 0.1,
    weight_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    *,
    normalize: bool = True,
) -> torch.Tensor:
    r"""Decoupled contrastive loss (Yeh et al., 2022, "Decoupled Contrastive Learning").

    NT-Xent with the positive removed from the denominator. For the direction
    ``a -> b`` and row ``i``:

    .. math::

        \ell_i = -w_i\, z^a_i \cdot z^b_i / \tau
                 + \log \sum_{k \ne i} \left[\exp(z^a_i \cdot z^a_k / \tau)
                                          + \exp(z^a_i \cdot z^b_k / \tau)\right]

    (``2N - 2`` negatives), ``w_i = 1`` unless ``weight_fn`` is given. The loss is
    the mean over rows, averaged over both directions ``a -> b`` and ``b -> a``.

    Args:
        z_a: ``[N, D]`` first views, ``N >= 2``.
        z_b: ``[N, D]`` second views.
        temperature: ``tau > 0`` (default 0.1).
        weight_fn: optional ``f(z_1, z_2) -> [N]`` weights of the positive term,
            called on the (normalised) embeddings of each direction; see
            :func:`von_mises_weights` and :func:`dclw`.
        normalize: L2-normalise the embeddings (default ``True``).

    Returns:
        The scalar loss.

    Example:
        >>> z_a, z_b = torch.randn(8, 32), torch.randn(8, 32)
        >>> loss = dcl(z_a, z_b, temperature=0.1)
        >>> loss.shape
        torch.Size([])
    """
    check_positive_scalar("temperature", temperature)
    check_pair("z_a", z_a, "z_b", z_b, min_rows=2)
    a, b = _normalize(z_a, normalize), _normalize(z_b, normalize)
    return (_dcl_direction(a, b, temperature, weight_fn) + _dcl_direction(b, a, temperature, weight_fn)) / 2


def dclw(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    temperature: Scalar = 0.1,
    sigma: float = 0.5,
    *,
    normalize: bool = True,
) -> torch.Tensor:
    r"""Weighted decoupled contrastive loss, DCLW (Yeh et al., 2022).

    :func:`dcl` with the von Mises-Fisher weight of the positive term
    ``w_i = 2 - N * softmax_i(z^a_i . z^b_i / sigma)`` (see :func:`von_mises_weights`),
    gradients flowing through the weights as in the official code.

    Args:
        z_a: ``[N, D]`` first views, ``N >= 2``.
        z_b: ``[N, D]`` second views.
        temperature: ``tau > 0`` (default 0.1).
        sigma: ``sigma > 0`` (default 0.5, the paper's value).
        normalize: L2-normalise the embeddings (default ``True``).

    Returns:
        The scalar loss.

    Example:
        >>> z_a, z_b = torch.randn(8, 32), torch.randn(8, 32)
        >>> loss = dclw(z_a, z_b, temperature=0.1, sigma=0.5)
        >>> loss.shape
        torch.Size([])
    """
    check_positive_scalar("sigma", sigma)

    def weight_fn(z_1: torch.Tensor, z_2: torch.Tensor) -> torch.Tensor:
        return von_mises_weights(z_1, z_2, sigma)

    return dcl(z_a, z_b, temperature, weight_fn, normalize=normalize)


def clip_loss(a: torch.Tensor, b: torch.Tensor, logit_scale: Scalar, *, chunk_size: ChunkSize = "auto") -> torch.Tensor:
    r"""CLIP's symmetric contrastive loss (Radford et al., 2021, "Learning Transferable Visual Models From Natural Language Supervision").

    With L2-normalised ``a`` and ``b`` and ``l_ij = t * a_i . b_j``:

    .. math::

        L = \frac{1}{2}\left[\frac{1}{B}\sum_i -\log \mathrm{softmax}_j(l_{ij})_{j=i}
            + \frac{1}{B}\sum_j -\log \mathrm{softmax}_i(l_{ij})_{i=j}\right]

    Args:
        a: ``[B, D]`` embeddings of one modality (e.g. images), ``B >= 2``;
            L2-normalised here.
        b: ``[B, D]`` paired embeddings of the other modality (e.g. texts).
        logit_scale: the multiplier ``t > 0``, already exponentiated (CLIP
            initialises ``t = 1 / 0.07``); a float or 1-element tensor, which keeps
            its gradient.
        chunk_size: ``"auto"`` (default; the fused symmetric kernel, one logit block for both directions, cached
            while the ``[B, B]`` logits fit 64 MiB, tiled beyond), ``None`` (naive)
            or a positive ``int`` (tiled, that block size); see :func:`info_nce`.

    Returns:
        The scalar loss.

    Example:
        >>> images, texts = torch.randn(8, 32), torch.randn(8, 32)
        >>> loss = clip_loss(images, texts, logit_scale=1 / 0.07)
        >>> loss.shape
        torch.Size([])
    """
    check_positive_scalar("logit_scale", logit_scale)
    check_pair("a", a, "b", b, min_rows=2)
    if chunk_size is not None:
        # Both directions from one logit block per tile (half the matrix products of two one-way calls).
        return symmetric_paired_loss(F.normalize(a, dim=1), F.normalize(b, dim=1), logit_scale, chunk_size=chunk_size)
    logits = logit_scale * F.normalize(a, dim=1) @ F.normalize(b, dim=1).T
    positives = torch.eye(a.shape[0], dtype=torch.bool, device=a.device)
    return (contrastive_loss_from_logits(logits, positives) + contrastive_loss_from_logits(logits.T, positives)) / 2


def siglip_loss(
    a: torch.Tensor,
    b: torch.Tensor,
    logit_scale: Scalar,
    logit_bias: Scalar,
    *,
    normalize: bool = True,
    chunk_size: ChunkSize = "auto",
) -> torch.Tensor:
    r"""Pairwise sigmoid loss of SigLIP (Zhai et al., 2023, "Sigmoid Loss for Language Image Pre-Training").

    Every pair is an independent binary classification:

    .. math::

        L = -\frac{1}{B} \sum_{i=1}^{B} \sum_{j=1}^{B}
            \log \sigma\big(z_{ij} (t\, a_i \cdot b_j + b)\big),
        \qquad z_{ij} = +1 \text{ if } i = j \text{ else } -1

    Args:
        a: ``[B, D]`` embeddings of one modality, ``B >= 2``; L2-normalised here
            unless ``normalize=False``.
        b: ``[B, D]`` paired embeddings of the other modality.
        logit_scale: the multiplier ``t > 0``, already exponentiated (paper init
            ``t = 10``); a float or 1-element tensor.
        logit_bias: the bias ``b`` (paper init ``-10``); a float or 1-element tensor.
        normalize: L2-normalise the embeddings (default ``True``).
        chunk_size: ``"auto"`` (default; naive while the ``[B, B]`` logits fit
            :data:`contrastkit.functional.tiled.NAIVE_MAX_LOGITS_BYTES`, blocks beyond),
            ``None`` (naive) or a positive ``int`` (blocks of that size, recomputed
            in backward; memory linear in ``B``).

    Returns:
        The scalar loss (sum over pairs, divided by ``B``).

    Example:
        >>> images, texts = torch.randn(8, 32), torch.randn(8, 32)
        >>> loss = siglip_loss(images, texts, logit_scale=10.0, logit_bias=-10.0)
        >>> loss.shape
        torch.Size([])
    """
    check_positive_scalar("logit_scale", logit_scale)
    check_finite_scalar("logit_bias", logit_bias)
    check_pair("a", a, "b", b, min_rows=2)
    n = a.shape[0]
    chunk = resolve_chunk_size(chunk_size, n, n, a.dtype)
    if chunk is not None:
        return tiled_siglip_loss(
            _normalize(a, normalize), _normalize(b, normalize), logit_scale, logit_bias, chunk_size=chunk
        )
    logits = logit_scale * _normalize(a, normalize) @ _normalize(b, normalize).T + logit_bias
    signs = 2 * torch.eye(n, dtype=logits.dtype, device=logits.device) - 1
    return -F.logsigmoid(signs * logits).sum() / n
