"""SupReMix: supervised contrastive regression with mixed-up hard pairs.

Wu, Dong, Ma, Lin, Chen, Shen and Yuan, 2023, "Mixup Your Own Pairs" (SupReMix).
SupCon for regression treats every sample with another target as an equally hard
negative and ignores the order of targets. SupReMix adds embedding-level mixtures as
harder, ordinality-aware pairs, and weights negatives by their label distance:

* anchor-inclusive mixture (hard negative): ``lambda z_a + (1 - lambda) z_k`` for a
  view ``k`` with ``y_k != y_a``, ``lambda ~ Beta(2, 8)`` (official default), mixed
  label ``lambda y_a + (1 - lambda) y_k != y_a``;
* anchor-exclusive mixture (hard positive): ``lambda z_j + (1 - lambda) z_k`` for views
  with ``y_j < y_a < y_k`` and ``lambda = (y_k - y_a) / (y_k - y_j)``, whose mixed label
  is exactly ``y_a``.

METHODS.md #58, verdict FULL. The loss follows the official ``SupConLoss_v2``
(``supremix_loss.py``: ``mixtures``, ``myop_mask``, ``calculate_weight``) with two
deliberate differences: the official code shifts the mixture logits by their own
row maximum (a different constant than the real logits', which changes the softmax;
its own comment flags it), here all logits share one log-sum-exp; and its ``L2_inv``
weight of mixtures reads ``((y_a - y) + 1)^2 + 1`` (a misplaced bracket), here it is
``(y_a - y)^2 + 1`` for every column. Mixtures are detached by default, as there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from contrastkit.functional.core import contrastive_loss_from_logits
from contrastkit.utils.checks import Scalar, check_embeddings, check_positive_scalar

__all__ = ["Mixtures", "label_distance_weights", "supremix_mixtures", "supremix_loss"]

Distance = Literal["L1", "L1_inv", "L2", "L2_inv"]
DISTANCES = ("L1", "L1_inv", "L2", "L2_inv")

#: mask values of a mixture column.
POSITIVE, NEGATIVE, EXCLUDED = 1, 0, -1


@dataclass
class Mixtures:
    """Mixture columns appended to each anchor's row (padded: unused slots are ``EXCLUDED``).

    Attributes:
        vectors: ``[N, M, D]`` mixture embeddings ``lam * z[first] + (1 - lam) * z[second]``.
        mask: ``[N, M]`` int8: 1 positive (anchor-exclusive), 0 negative (anchor-inclusive), -1 excluded.
        labels: ``[N, M]`` float mixed labels (``y_a`` exactly for positives).
        first: ``[N, M]`` long index of the first mixed view (the anchor for negatives; -1 if excluded).
        second: ``[N, M]`` long index of the second mixed view (-1 if excluded).
        lam: ``[N, M]`` mixing coefficient of ``first``.
    """

    vectors: torch.Tensor
    mask: torch.Tensor
    labels: torch.Tensor
    first: torch.Tensor
    second: torch.Tensor
    lam: torch.Tensor


def label_distance_weights(
    anchor_labels: torch.Tensor, labels: torch.Tensor, distance: Distance = "L1"
) -> torch.Tensor:
    r"""SupReMix's negative weights from the label distance ``d = y_a - y``.

    ``'L1'``: ``1 / (|d| + 1)``; ``'L2'``: ``1 / (d^2 + 1)`` (far negatives count less);
    ``'L1_inv'``: ``|d| + 1``; ``'L2_inv'``: ``d^2 + 1`` (far negatives count more, the
    official training default is ``'L1_inv'``). Every form is 1 at ``d = 0``, so
    positives keep weight 1.

    Args:
        anchor_labels: ``[N]`` float labels of the anchors.
        labels: ``[M]`` (shared by all anchors) or ``[N, M]`` float labels of the columns.
        distance: one of ``'L1'``, ``'L1_inv'``, ``'L2'``, ``'L2_inv'``.

    Returns:
        ``[N, M]`` positive weights.
    """
    if distance not in DISTANCES:
        raise ValueError(f"distance: expected one of {', '.join(DISTANCES)}, got {distance!r}")
    other = labels.unsqueeze(0) if labels.dim() == 1 else labels
    d = anchor_labels.unsqueeze(1) - other
    if distance == "L1":
        return 1 / (d.abs() + 1)
    if distance == "L2":
        return 1 / (d.square() + 1)
    if distance == "L1_inv":
        return d.abs() + 1
    return d.square() + 1


def _sample_columns(candidates: torch.Tensor, cap: int | None, generator: torch.Generator | None) -> tuple:
    """Up to ``cap`` candidates per row, uniformly without replacement: (column ids [N, m], kept [N, m])."""
    rows, columns = candidates.shape
    m = columns if cap is None else min(cap, columns)
    if m == 0:
        empty = torch.zeros(rows, 0, dtype=torch.long, device=candidates.device)
        return empty, empty.bool()
    keys = torch.rand(rows, columns, generator=generator, device="cpu").to(candidates.device)
    keys = keys.masked_fill(~candidates, -1.0)  # candidates rank first, in random order
    top, ids = keys.topk(m, dim=1)
    return ids, top >= 0


def supremix_mixtures(
    z: torch.Tensor,
    labels: torch.Tensor,
    *,
    mix_negatives: bool = True,
    mix_positives: bool = True,
    max_negatives: int | None = 64,
    max_positives: int | None = 64,
    beta: tuple[float, float] = (2.0, 8.0),
    max_positive_gap: float | None = None,
    generator: torch.Generator | None = None,
) -> Mixtures:
    r"""Sample SupReMix's anchor-inclusive (negative) and anchor-exclusive (positive) mixtures.

    For every anchor row ``a`` of ``z``:

    * negatives: views ``k`` with ``y_k != y_a``; ``lambda ~ Beta(*beta)``, mixture
      ``lambda z_a + (1 - lambda) z_k``, label ``lambda y_a + (1 - lambda) y_k``;
    * positives: pairs ``(j, k)`` with ``y_j < y_a < y_k`` (and both gaps
      ``< max_positive_gap`` when given, the official ``n``), ``lambda = (y_k - y_a) /
      (y_k - y_j)``, mixture ``lambda z_j + (1 - lambda) z_k``, label ``y_a``.

    The official code keeps all ``(2B)^2`` candidates per anchor; here at most
    ``max_negatives`` and ``max_positives`` are drawn uniformly without replacement
    (``None``: all), which bounds memory at ``N * (caps) * D``.

    Args:
        z: ``[N, D]`` embeddings (all views, e.g. normalised; used as given).
        labels: ``[N]`` float (or integer) regression targets of the rows.
        mix_negatives: build anchor-inclusive mixtures (default ``True``).
        mix_positives: build anchor-exclusive mixtures (default ``True``).
        max_negatives: cap per anchor (default 64).
        max_positives: cap per anchor (default 64).
        beta: ``(a, b)`` of the Beta distribution of negative ``lambda`` (official ``Beta(2, 8)``).
        max_positive_gap: optional bound on ``y_a - y_j`` and ``y_k - y_a`` of positive pairs.
        generator: optional CPU ``torch.Generator`` for the sampling.

    Returns:
        A :class:`Mixtures` with ``M = (negative cap) + (positive cap)`` padded columns.

    Raises:
        ValueError: on bad shapes, non-finite values, negative caps or Beta parameters.

    Example:
        >>> z, y = torch.randn(6, 4), torch.tensor([1.0, 2.0, 3.0, 1.0, 2.0, 3.0])
        >>> mix = supremix_mixtures(z, y, generator=torch.Generator().manual_seed(0))
        >>> positive = mix.mask == 1  # anchor-exclusive mixtures carry the anchor's label exactly
        >>> bool((mix.labels[positive] == y.unsqueeze(1).expand_as(mix.labels)[positive]).all())
        True
    """
    check_embeddings("z", z)
    n = z.shape[0]
    _check_regression_labels(labels, n)
    for name, cap in (("max_negatives", max_negatives), ("max_positives", max_positives)):
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 0):
            raise ValueError(f"{name}: expected an int >= 0 or None, got {cap!r}")
    if len(beta) != 2 or not all(float(b) > 0 for b in beta):
        raise ValueError(f"beta: expected two positive Beta parameters, got {beta!r}")
    if max_positive_gap is not None and not max_positive_gap > 0:
        raise ValueError(f"max_positive_gap: expected a value > 0 or None, got {max_positive_gap!r}")
    device = z.device
    y = labels.to(device=device, dtype=z.dtype)
    parts: list[tuple[torch.Tensor, ...]] = []

    if mix_negatives:
        candidates = y.unsqueeze(1) != y.unsqueeze(0)  # [a, k]; excludes the anchor itself
        ids, kept = _sample_columns(candidates, max_negatives, generator)
        dist = torch.distributions.Beta(torch.tensor(float(beta[0])), torch.tensor(float(beta[1])))
        # torch.distributions takes no generator: with one, draw inside a forked global RNG
        # seeded from it, so the draw is reproducible and the global stream is untouched.
        if generator is None:
            lam = dist.sample(ids.shape)
        else:
            seed = int(torch.randint(2**62, (1,), generator=generator))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                lam = dist.sample(ids.shape)
        lam = lam.to(device=device, dtype=z.dtype)
        anchor = torch.arange(n, device=device).unsqueeze(1).expand_as(ids)
        parts.append((anchor, ids, lam, lam * y.unsqueeze(1) + (1 - lam) * y[ids], kept, NEGATIVE))

    if mix_positives:
        below = y.unsqueeze(0) < y.unsqueeze(1)  # [a, j]: y_j < y_a
        above = y.unsqueeze(0) > y.unsqueeze(1)  # [a, k]: y_k > y_a
        if max_positive_gap is not None:
            gap = (y.unsqueeze(0) - y.unsqueeze(1)).abs() < max_positive_gap
            below, above = below & gap, above & gap
        candidates = (below.unsqueeze(2) & above.unsqueeze(1)).reshape(n, n * n)  # [a, j * n + k]
        ids, kept = _sample_columns(candidates, max_positives, generator)
        j, k = ids // n, ids % n
        span = (y[k] - y[j]).where(kept, torch.ones_like(y[k]))
        lam = ((y[k] - y.unsqueeze(1)) / span).where(kept, torch.zeros_like(span))
        parts.append((j, k, lam, y.unsqueeze(1).expand_as(lam).clone(), kept, POSITIVE))

    if not parts:
        zeros = torch.zeros(n, 0, device=device)
        return Mixtures(
            z.new_zeros(n, 0, z.shape[1]), zeros.to(torch.int8), zeros.to(z.dtype),
            zeros.long(), zeros.long(), zeros.to(z.dtype),
        )
    first = torch.cat([p[0] for p in parts], dim=1)
    second = torch.cat([p[1] for p in parts], dim=1)
    lam = torch.cat([p[2] for p in parts], dim=1)
    mixed = torch.cat([p[3] for p in parts], dim=1)
    kept = torch.cat([p[4] for p in parts], dim=1)
    kind = torch.cat([torch.full_like(p[0], p[5]) for p in parts], dim=1)
    mask = torch.where(kept, kind, torch.full_like(kind, EXCLUDED)).to(torch.int8)
    first = first.where(kept, torch.full_like(first, -1))
    second = second.where(kept, torch.full_like(second, -1))
    lam = lam.where(kept, torch.zeros_like(lam))
    mixed = mixed.where(kept, torch.zeros_like(mixed))
    safe_first, safe_second = first.clamp_min(0), second.clamp_min(0)
    vectors = lam.unsqueeze(2) * z[safe_first] + (1 - lam).unsqueeze(2) * z[safe_second]
    vectors = vectors * kept.unsqueeze(2)
    return Mixtures(vectors, mask, mixed, first, second, lam)


def _check_regression_labels(labels: torch.Tensor, rows: int) -> None:
    if not isinstance(labels, torch.Tensor) or labels.shape != (rows,):
        got = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels: expected shape [{rows}] (one target per row), got {got}")
    if labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels: expected a real-valued tensor, got dtype {labels.dtype}")
    if labels.is_floating_point() and not torch.isfinite(labels).all():
        raise ValueError("labels: expected finite targets, got NaN/inf")


def supremix_loss(
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: Scalar = 0.07,
    base_temperature: float | None = None,
    distance: Distance | None = "L1",
    mix_negatives: bool = True,
    mix_positives: bool = True,
    max_negatives: int | None = 64,
    max_positives: int | None = 64,
    beta: tuple[float, float] = (2.0, 8.0),
    max_positive_gap: float | None = None,
    detach_mixtures: bool = True,
    normalize: bool = True,
    mixtures: Mixtures | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""SupReMix loss: weighted SupCon on regression targets with mixture columns.

    The ``N = B * V`` views (view-major, as :func:`contrastkit.functional.contrastive.supcon`)
    are anchors; the columns are the other views and the anchor's mixtures
    (:func:`supremix_mixtures`). Positives ``P(i)``: views with the same target and
    positive mixtures; every non-excluded column other than ``i`` enters the
    denominator with the label-distance weight ``w_ik`` (:func:`label_distance_weights`
    of the column's, or the mixture's, label):

    .. math::

        \ell_i = -\frac{\tau}{\tau_b} \frac{1}{|P(i)|} \sum_{p \in P(i)}
            \Big[ s_{ip}/\tau - \log \sum_{k \text{ valid}} w_{ik} e^{s_{ik}/\tau} \Big]

    (``w = 1`` on positives, so weighting the numerator too changes nothing). With
    ``mix_negatives = mix_positives = False`` this is the plain weighted SupCon
    regression baseline (the official ``--contrastive_method supcon --use_weight``).

    Args:
        features: ``[B, V, D]`` embeddings, ``B >= 2``; L2-normalised here unless
            ``normalize=False``. Mixtures are built from the (normalised) views and
            not re-normalised, as in the official code.
        labels: ``[B]`` targets; positives are exactly equal targets (bin continuous
            targets first to get same-target positives beyond the other views).
        temperature: ``tau > 0`` (official class default 0.07).
        base_temperature: ``tau_b``; ``None`` (default, the official training setting
            ``tau_b = tau``): no scaling.
        distance: ``'L1'`` (default), ``'L1_inv'``, ``'L2'``, ``'L2_inv'``, or ``None`` (all weights 1).
        mix_negatives: add anchor-inclusive mixtures (default ``True``).
        mix_positives: add anchor-exclusive mixtures (default ``True``).
        max_negatives: cap of negative mixtures per anchor (default 64, ``None``: all).
        max_positives: cap of positive mixtures per anchor (default 64, ``None``: all).
        beta: Beta parameters of the negative ``lambda`` (default ``(2, 8)``).
        max_positive_gap: optional bound on the label gaps of positive mixtures.
        detach_mixtures: stop gradients through the mixtures (default ``True``, as the
            official code); the anchors always get gradients.
        normalize: L2-normalise each view (default ``True``).
        mixtures: precomputed :class:`Mixtures` for the flattened, normalised views
            (then no sampling and the ``mix_*``/cap options are ignored).
        generator: optional CPU ``torch.Generator`` for the sampling.

    Returns:
        The scalar loss, averaged over the ``N`` anchors.

    Raises:
        ValueError: on bad shapes or values.

    Example:
        >>> features, y = torch.randn(8, 2, 16), torch.rand(8) * 10
        >>> loss = supremix_loss(features, y, generator=torch.Generator().manual_seed(0))
    """
    check_positive_scalar("temperature", temperature)
    if base_temperature is not None:
        check_positive_scalar("base_temperature", base_temperature)
    if distance is not None and distance not in DISTANCES:
        raise ValueError(f"distance: expected one of {', '.join(DISTANCES)} or None, got {distance!r}")
    if not isinstance(features, torch.Tensor) or features.dim() != 3:
        got = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ValueError(f"features: expected shape [B, V, D] (samples, views, features), got {got}")
    batch, views, dim = features.shape
    if batch < 2:
        raise ValueError(f"features: expected at least 2 samples, got shape {tuple(features.shape)}")
    _check_regression_labels(labels, batch)
    flat = features.transpose(0, 1).reshape(views * batch, dim)
    check_embeddings("features (flattened to [B*V, D])", flat)
    z = F.normalize(flat, dim=1) if normalize else flat
    n = views * batch
    y = labels.to(device=z.device, dtype=z.dtype).repeat(views)

    if mixtures is None:
        source = z.detach() if detach_mixtures else z
        mixtures = supremix_mixtures(
            source, y, mix_negatives=mix_negatives, mix_positives=mix_positives, max_negatives=max_negatives,
            max_positives=max_positives, beta=beta, max_positive_gap=max_positive_gap, generator=generator,
        )
    elif mixtures.vectors.shape[:1] != (n,) or mixtures.mask.shape != mixtures.vectors.shape[:2]:
        raise ValueError(
            f"mixtures: expected vectors [{n}, M, {dim}] and mask [{n}, M], got "
            f"{tuple(mixtures.vectors.shape)} and {tuple(mixtures.mask.shape)}"
        )

    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    real_logits = z @ z.T
    mix_logits = torch.einsum("nd,nmd->nm", z, mixtures.vectors.to(z.dtype))
    logits = torch.cat([real_logits, mix_logits], dim=1) / temperature
    mask = mixtures.mask.to(z.device)
    positives = torch.cat([(y.unsqueeze(1) == y.unsqueeze(0)) & ~eye, mask == POSITIVE], dim=1)
    valid = torch.cat([~eye, mask != EXCLUDED], dim=1)
    weights = None
    if distance is not None:
        column_labels = torch.cat([y.unsqueeze(0).expand(n, n), mixtures.labels.to(z.device, z.dtype)], dim=1)
        weights = label_distance_weights(y, column_labels, distance)
    loss = contrastive_loss_from_logits(logits, positives, valid_mask=valid, column_weights=weights)
    if base_temperature is not None:
        loss = loss * (float(temperature) / base_temperature)
    return loss
