"""HaLP: hallucinated latent positives, slerped from an anchor towards a nearby prototype.

Shah, Roy, Shah, Mishra, Jacobs, Cherian and Chellappa, "HaLP: Hallucinating Latent
Positives for Skeleton-based Self-Supervised Learning of Actions", CVPR 2023. Prototypes
are found by k-means on the most recent queue keys; each anchor ``k`` (a momentum key) is
moved along the great circle towards another prototype ``p`` but never past the point
where it would be nearer to ``p`` than to its own prototype ``p0``. The largest such step
has a closed form, ``t_max``; the step is drawn below it, so the positive is hard yet keeps
the anchor's "class". The query is then pulled towards these positives, next to MoCo's loss.

What is here: :func:`kmeans_prototypes` (spherical k-means, k-means++ seeding),
:func:`recent_queue_keys`, :func:`slerp_t_max`, :func:`halp_positives`, and two ways of
using the positives with a MoCo objective: :func:`halp_alignment_loss` (the official
code's term) and :func:`halp_positive_logits` (extra positive columns for a multi-positive
InfoNCE).

METHODS.md verdict: **PARTIAL** — the generator and its geometry are implemented and
tested; the paper-scale check needs the NTU-60/120 and PKU-MMD skeleton datasets (with a
200-epoch MoCo/CMD checkpoint to start from), which are not available offline.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastkit.negatives.clustering import spherical_kmeans
from contrastkit.negatives.queue import Queue
from contrastkit.utils.checks import Scalar, check_embeddings, check_positive_scalar

__all__ = [
    "halp_alignment_loss",
    "halp_positive_logits",
    "halp_positives",
    "kmeans_prototypes",
    "recent_queue_keys",
    "slerp_t_max",
]


def _generator_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    return generator.device if generator is not None else device


def recent_queue_keys(queue: Queue, count: int = 256) -> torch.Tensor:
    """The ``count`` most recently enqueued keys of a :class:`Queue`, oldest first.

    HaLP clusters only recent keys (256 in the official scripts): old keys come from an
    older key encoder and would drag the prototypes behind.

    Args:
        queue: a MoCo queue.
        count: how many keys (capped at the number stored).

    Returns:
        ``[min(count, len(queue)), dim]`` keys.

    Raises:
        ValueError: if ``count < 1`` or the queue is empty.
    """
    if count < 1:
        raise ValueError(f"recent_queue_keys: expected count >= 1, got {count}")
    stored = len(queue)
    if stored == 0:
        raise ValueError("recent_queue_keys: expected a queue with keys, got an empty queue")
    take = min(count, stored)
    # The newest key sits just before the write pointer (wrapping around the buffer).
    end = int(queue.ptr) if queue.is_full else stored
    rows = (torch.arange(end - take, end, device=queue.keys.device)) % queue.size
    return queue.keys[rows]


@torch.no_grad()
def kmeans_prototypes(
    keys: torch.Tensor,
    num_prototypes: int = 20,
    *,
    iterations: int = 20,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Spherical k-means prototypes of L2-normalised keys (HaLP: 20 prototypes of 256 recent keys).

    k-means++ seeding with cosine distance ``1 - x . c``, then ``iterations`` rounds of
    assignment to the most similar centroid and re-normalised means
    (:math:`c_j = \mathrm{normalize}(\sum_{i \in j} x_i)`). A cluster that loses every
    member keeps its previous centroid. The official code uses geomstats' Riemannian
    k-means on the sphere (Fréchet means); the normalised Euclidean mean is the usual
    cheap approximation of it and gives the same partition for tight clusters.

    Args:
        keys: ``[N, D]`` keys, ``N >= num_prototypes`` (L2-normalised here).
        num_prototypes: ``P >= 1`` (paper 20).
        iterations: Lloyd iterations (default 20).
        generator: optional random generator for the seeding.

    Returns:
        ``[P, D]`` unit-norm prototypes.

    Raises:
        ValueError: on bad shapes or values, or fewer keys than prototypes.
    """
    check_embeddings("keys", keys)
    if num_prototypes < 1 or keys.shape[0] < num_prototypes:
        raise ValueError(
            f"kmeans_prototypes: expected 1 <= num_prototypes <= number of keys ({keys.shape[0]}), "
            f"got {num_prototypes}"
        )
    if iterations < 0:
        raise ValueError(f"kmeans_prototypes: expected iterations >= 0, got {iterations}")
    return spherical_kmeans(keys, num_prototypes, iterations=iterations, generator=generator)[1].to(keys.dtype)


def slerp_t_max(anchors: torch.Tensor, closest: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    r"""HaLP's closed-form largest slerp step that keeps a point nearer to ``p0`` than to ``p``.

    On the great circle from the anchor ``k`` to the target prototype ``p``,
    ``h(t) = [\sin((1-t)\omega) k + \sin(t\omega) p] / \sin\omega`` with
    ``\omega = \arccos(p . k)``. The condition ``h . p0 \ge h . p`` reads
    ``\sin((1-t)\omega)\, k.(p0 - p) \ge \sin(t\omega)(1 - p.p0)``, i.e.
    ``\tan(t\omega) \le \sin\omega / (K + \cos\omega)`` with ``K = (1 - p.p0) / k.(p0 - p)``:

    .. math::

        t_{max} = \frac{1}{\omega} \operatorname{atan2}(\sin\omega,\ K + \cos\omega)

    (``atan2`` keeps the angle in ``(0, \pi)`` when ``K + \cos\omega < 0``, where the
    official ``atan`` would turn negative). The result is clipped to ``[0, 1]``.

    Args:
        anchors: ``[..., D]`` unit anchors ``k``, nearer to ``closest`` than to ``targets``.
        closest: ``[..., D]`` the anchor's own (nearest) unit prototype ``p0``.
        targets: ``[..., D]`` unit target prototypes ``p`` (broadcast together).

    Returns:
        ``[...]`` the step bound ``t_max``.
    """
    cos_omega = (anchors * targets).sum(-1).clamp(-1 + 1e-7, 1 - 1e-7)
    omega = torch.acos(cos_omega)
    gap = (anchors * (closest - targets)).sum(-1).clamp_min(1e-12)
    k = (1 - (targets * closest).sum(-1)) / gap
    t_max = torch.atan2(torch.sin(omega), k + cos_omega) / omega
    return t_max.clamp(0.0, 1.0)


@torch.no_grad()
def halp_positives(
    anchors: torch.Tensor,
    prototypes: torch.Tensor,
    *,
    num_positives: int = 100,
    hardness: float = 0.2,
    num_targets: int = 20,
    skip_closest: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""HaLP's hallucinated positives: anchors slerped towards nearby prototypes, up to ``t_max``.

    For each anchor ``k`` (L2-normalised; HaLP uses the momentum key), ``p0`` is its most
    similar prototype. Each of the ``num_positives`` positives picks a target prototype
    ``p`` uniformly among the ``num_targets`` most similar after skipping the
    ``skip_closest`` nearest (with ``skip_closest=1``: any prototype but ``p0``), draws

    .. math::

        t \sim U(\texttt{hardness} \cdot t_{max},\ t_{max}), \qquad
        h = \mathrm{normalize}\Big(\frac{\sin((1-t)\omega)\, k + \sin(t\omega)\, p}{\sin\omega}\Big)

    with ``t_max`` from :func:`slerp_t_max`, so every positive stays nearer to ``p0`` than
    to ``p``. ``hardness`` is ``1 - lambda_pos`` of the official code (its default
    ``lambda_pos = 0.8`` is ``hardness = 0.2``): 0 draws from the whole allowed arc, 1
    puts every positive on the boundary (the code's ``lambda_pos = 1000`` setting used
    ``t_max - 0.01``).

    Random draws, in this order: the target choices ``[B, G]``, then ``u ~ U(0, 1)``
    ``[B, G]`` with ``t = t_max (hardness + (1 - hardness) u)``.

    Args:
        anchors: ``[B, D]`` anchors (L2-normalised here; detached).
        prototypes: ``[P, D]`` prototypes, ``P >= skip_closest + 1`` (L2-normalised here).
        num_positives: ``G >= 1`` positives per anchor (paper 100).
        hardness: in ``[0, 1]`` (default 0.2, the official code's ``lambda_pos = 0.8``).
        num_targets: how many of the nearest prototypes (after the skipped ones) a target is
            drawn from (paper 20, i.e. every other prototype with 20 prototypes); capped at
            ``P - skip_closest``.
        skip_closest: nearest prototypes never used as targets (paper 1: ``p0`` itself).
        generator: optional random generator.

    Returns:
        ``[B, G, D]`` unit-norm positives, without gradient.

    Raises:
        ValueError: on bad shapes, values or counts.

    Example:
        >>> prototypes = torch.nn.functional.normalize(torch.randn(20, 16), dim=1)
        >>> halp_positives(torch.randn(4, 16), prototypes, num_positives=8).shape
        torch.Size([4, 8, 16])
    """
    check_embeddings("anchors", anchors)
    check_embeddings("prototypes", prototypes, dim=anchors.shape[1])
    if num_positives < 1:
        raise ValueError(f"halp_positives: expected num_positives >= 1, got {num_positives}")
    if not 0.0 <= hardness <= 1.0:
        raise ValueError(f"halp_positives: expected hardness in [0, 1], got {hardness}")
    if skip_closest < 1 or prototypes.shape[0] <= skip_closest or num_targets < 1:
        raise ValueError(
            f"halp_positives: expected skip_closest >= 1, num_targets >= 1 and more than skip_closest prototypes, "
            f"got skip_closest={skip_closest}, num_targets={num_targets}, {prototypes.shape[0]} prototypes"
        )
    k = F.normalize(anchors.detach(), dim=1)
    protos = F.normalize(prototypes.detach().to(k.dtype), dim=1)
    batch = k.shape[0]
    candidates = min(num_targets, protos.shape[0] - skip_closest)
    order = (k @ protos.T).argsort(dim=1, descending=True)
    p0 = protos[order[:, 0]].unsqueeze(1)  # [B, 1, D]
    pool = order[:, skip_closest : skip_closest + candidates]  # [B, C]
    where = _generator_device(generator, k.device)
    choice = torch.randint(candidates, (batch, num_positives), generator=generator, device=where).to(k.device)
    u = torch.rand((batch, num_positives), generator=generator, device=where).to(device=k.device, dtype=k.dtype)
    p = protos[pool.gather(1, choice)]  # [B, G, D]
    anchor = k.unsqueeze(1)
    t_max = slerp_t_max(anchor, p0, p)
    t = t_max * (hardness + (1 - hardness) * u)
    omega = torch.acos((anchor * p).sum(-1).clamp(-1 + 1e-7, 1 - 1e-7))
    sin_omega = torch.sin(omega)
    weight_k = (torch.sin((1 - t) * omega) / sin_omega).unsqueeze(-1)
    weight_p = (torch.sin(t * omega) / sin_omega).unsqueeze(-1)
    return F.normalize(weight_k * anchor + weight_p * p, dim=-1)


def halp_positive_logits(query: torch.Tensor, positives: torch.Tensor, temperature: Scalar = 0.07) -> torch.Tensor:
    """Logits ``q . h / temperature`` of each query against its own hallucinated positives.

    Append them to MoCo's logits ``[q.k+, q.Q^T] / tau`` and mark the extra columns as
    positives (``pos_mask``) to train a multi-positive InfoNCE
    (:func:`contrastkit.functional.contrastive_loss_from_logits`).

    Args:
        query: ``[B, D]`` queries (L2-normalised here; keeps its gradient).
        positives: ``[B, G, D]`` positives from :func:`halp_positives` (treated as constants).
        temperature: ``tau > 0`` (HaLP's MoCo: 0.07).

    Returns:
        ``[B, G]`` logits.
    """
    check_positive_scalar("temperature", temperature)
    check_embeddings("query", query)
    if positives.dim() != 3 or positives.shape[0] != query.shape[0] or positives.shape[2] != query.shape[1]:
        raise ValueError(
            f"positives: expected shape [{query.shape[0]}, G, {query.shape[1]}], got {tuple(positives.shape)}"
        )
    q = F.normalize(query, dim=1)
    return torch.einsum("bd,bgd->bg", q, F.normalize(positives.detach().to(q.dtype), dim=2)) / temperature


def halp_alignment_loss(
    query: torch.Tensor,
    positives: torch.Tensor,
    prototypes: torch.Tensor | None = None,
    anchors: torch.Tensor | None = None,
    *,
    temperature: Scalar = 0.07,
) -> torch.Tensor:
    r"""The official code's HaLP term: pull each query towards its hallucinated positives.

    .. math::

        L_{HaLP} = -\frac{1}{|M|} \sum_{(b, g) \in M} \frac{q_b \cdot h_{bg}}{\tau}

    where ``M`` holds the "good" positives: those whose nearest prototype is still the
    anchor's ``p0`` (all of them when ``prototypes`` / ``anchors`` are not given). Added to
    MoCo's loss with weight ``mu`` (2 in the official scripts). Note there is no
    denominator: the term only aligns, MoCo's InfoNCE keeps the uniformity.

    Args:
        query: ``[B, D]`` queries (L2-normalised here).
        positives: ``[B, G, D]`` from :func:`halp_positives` (constants).
        prototypes: optional ``[P, D]`` prototypes, with ``anchors``, to keep good positives only.
        anchors: optional ``[B, D]`` the anchors the positives were made from.
        temperature: ``tau > 0`` (HaLP's MoCo: 0.07).

    Returns:
        The scalar loss (0 when no positive is good).
    """
    logits = halp_positive_logits(query, positives, temperature)
    if (prototypes is None) != (anchors is None):
        raise ValueError("halp_alignment_loss: expected both prototypes and anchors, or neither")
    if prototypes is None:
        return -logits.mean()
    protos = F.normalize(prototypes.detach().to(logits.dtype), dim=1)
    own = (F.normalize(anchors.detach().to(logits.dtype), dim=1) @ protos.T).argmax(dim=1)  # [B]
    nearest = (F.normalize(positives.detach().to(logits.dtype), dim=2) @ protos.T).argmax(dim=2)  # [B, G]
    good = (nearest == own.unsqueeze(1)).to(logits.dtype)
    return -(logits * good).sum() / good.sum().clamp_min(1.0)
