"""Few-shot episodes on frozen embeddings, with BECLR's optimal-transport prototype alignment (OpTA).

The protocol of unsupervised few-shot learning (e.g. Poulakakis-Daktylidis & Jamali-Rad,
"BECLR: Batch Enhanced Contrastive Few-Shot Learning", ICLR 2024): classes never seen in
pretraining are split into N-way K-shot episodes with ``queries`` query rows per class; a
classifier is fitted on the N x K support rows of each episode and scored on its queries.
The result is the mean episode accuracy with a 95 % confidence interval
(``1.96 * std / sqrt(episodes)``).

OpTA (the paper's inference-time contribution) moves the support prototypes towards the
query distribution before classification: with per-sample standardised features, it solves
an entropic optimal-transport problem between the N prototypes and the N x Q queries
(uniform marginals, cost ``||P_i - Q_j||^2 / max``, log-domain Sinkhorn, eps = 0.05, at most
1000 iterations, tolerance 1e-4, as in the official code) and replaces each prototype by its
barycentric projection ``P_hat = diag(pi 1)^-1 pi Q``, repeated ``passes`` times. The default
``opta_form="official"`` is what BECLR's official ``evaluate.py`` does (stypoumic/BECLR, its
``--one_shot_ot_passes 5 --five_shot_ot_passes 1 --ratio_OT 0.7`` defaults): 5 passes at
1-shot; at more shots 1 pass, then the blend ``0.7 * P_hat + 0.3 * P`` with the original
prototypes. ``opta_form="two-pass"`` keeps this module's earlier reading (2 passes, no blend,
at more than one shot). The official evaluation fits a logistic regression (C = 1) on the
aligned prototypes; ``classifier="opta"`` uses the nearest aligned prototype instead and
``"opta-logistic"`` the official logistic regression.

METHODS.md row #2 (BECLR: DyCE + OpTA), verdict FULL: OpTA is checked offline on episodes of
Fashion-MNIST / digits classes unseen in pretraining.

Accuracies are fractions in ``[0, 1]``, like everywhere in ``eval/``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from contrastkit.utils.checks import check_embeddings, check_labels

#: Classifiers of :func:`evaluate_episodes`.
CLASSIFIERS = ("prototype", "opta", "logistic", "opta-logistic")

#: OpTA settings (:func:`default_passes`, :func:`default_blend`): ``"official"`` as BECLR's
#: ``evaluate.py`` (5 passes at 1-shot; 1 pass and a 0.7 blend at more shots), ``"two-pass"``
#: this module's earlier default (5 passes at 1-shot; 2 passes, no blend, at more shots).
OPTA_FORMS = ("official", "two-pass")

#: Weight of the transported prototypes in the official blend at more than one shot
#: (``ratio_OT`` in BECLR's ``evaluate.py``); the original prototypes get the rest.
OFFICIAL_BLEND = 0.7


class Episodes(NamedTuple):
    """Row indices of sampled episodes.

    Attributes:
        support: ``[E, ways, shots]`` row indices of the support set; ``support[e, c]`` are the
            shots of the episode's class ``c``.
        query: ``[E, ways, queries]`` row indices of the query set, laid out the same way.
        classes: ``[E, ways]`` the original label of each episode class.
    """

    support: torch.Tensor
    query: torch.Tensor
    classes: torch.Tensor


def sample_episodes(
    labels: torch.Tensor,
    *,
    ways: int = 5,
    shots: int = 1,
    queries: int = 15,
    episodes: int = 600,
    generator: torch.Generator | None = None,
) -> Episodes:
    """Draw ``episodes`` N-way K-shot episodes from a labelled set.

    Within an episode, the ``ways`` classes are distinct and drawn uniformly (without
    replacement) from the classes with at least ``shots + queries`` rows, and each class's
    ``shots + queries`` rows are drawn without replacement, so support and query rows are
    disjoint. Episodes are independent of each other. Sampling is vectorised over episodes
    (one random permutation per class and episode via ``argsort`` of uniform keys).

    Args:
        labels: ``[N]`` integer class labels of the rows.
        ways: classes per episode (paper: 5).
        shots: support rows per class (1 or 5 in the paper).
        queries: query rows per class (paper: 15).
        episodes: number of episodes (paper: 2000; 600 is the common small setting).
        generator: optional random generator (default: torch's global RNG).

    Returns:
        An :class:`Episodes` of row indices (on ``labels``' device).

    Raises:
        ValueError: non-positive sizes, or fewer than ``ways`` classes with enough rows.

    Example:
        >>> labels = torch.arange(10).repeat_interleave(20)
        >>> e = sample_episodes(labels, ways=5, shots=1, queries=15, episodes=3)
        >>> e.support.shape, e.query.shape
        (torch.Size([3, 5, 1]), torch.Size([3, 5, 15]))
    """
    labels = check_labels("few-shot labels", labels)
    for name, value in (("ways", ways), ("shots", shots), ("queries", queries), ("episodes", episodes)):
        if int(value) < 1:
            raise ValueError(f"sample_episodes: expected {name} >= 1, got {value}")
    ways, shots, queries, episodes = int(ways), int(shots), int(queries), int(episodes)
    per_class = shots + queries
    device = labels.device
    classes, counts = labels.unique(return_counts=True)
    eligible = classes[counts >= per_class]
    if eligible.numel() < ways:
        raise ValueError(
            f"sample_episodes: expected at least ways={ways} classes with >= shots+queries={per_class} rows, "
            f"got {eligible.numel()} (class counts: {dict(zip(classes.tolist(), counts.tolist()))})"
        )
    # rows[c] = [E, shots + queries]: an independent random draw of class c's rows per episode.
    draws = []
    for label in eligible.tolist():
        members = (labels == label).nonzero().squeeze(1)
        keys = torch.rand(episodes, members.numel(), generator=generator, device="cpu").to(device)
        draws.append(members[keys.argsort(dim=1)[:, :per_class]])
    rows = torch.stack(draws)  # [C, E, shots + queries]
    # The episode's classes: the first `ways` of a random permutation of the eligible classes.
    keys = torch.rand(episodes, eligible.numel(), generator=generator, device="cpu").to(device)
    chosen = keys.argsort(dim=1)[:, :ways]  # [E, ways] positions in `eligible`
    episode_index = torch.arange(episodes, device=device).unsqueeze(1).expand(episodes, ways)
    picked = rows[chosen, episode_index]  # [E, ways, shots + queries]
    return Episodes(picked[:, :, :shots], picked[:, :, shots:], eligible[chosen])


def standardize(features: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-sample standardisation: each row minus its mean over features, divided by its std.

    This is the "mean normalisation" the BECLR evaluation applies to every feature row
    before OpTA and the classifier (unbiased std, as ``torch.std``).

    Args:
        features: ``[..., D]`` features, ``D >= 2``.
        eps: added to the std so constant rows do not divide by zero.

    Returns:
        The standardised features, same shape.
    """
    if features.shape[-1] < 2:
        raise ValueError(f"standardize: expected at least 2 features per row, got shape {tuple(features.shape)}")
    mean = features.mean(dim=-1, keepdim=True)
    std = features.std(dim=-1, keepdim=True)
    return (features - mean) / (std + eps)


def _as_batch(prototypes: torch.Tensor, queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Accept ``[N, D]`` / ``[M, D]`` or batched ``[E, N, D]`` / ``[E, M, D]`` inputs."""
    if prototypes.dim() not in (2, 3) or queries.dim() != prototypes.dim():
        raise ValueError(
            "opta: expected prototypes [N, D] and queries [M, D] (or batched [E, N, D] and [E, M, D]), "
            f"got {tuple(prototypes.shape)} and {tuple(queries.shape)}"
        )
    single = prototypes.dim() == 2
    if single:
        prototypes, queries = prototypes.unsqueeze(0), queries.unsqueeze(0)
    if prototypes.shape[0] != queries.shape[0] or prototypes.shape[2] != queries.shape[2]:
        raise ValueError(
            f"opta: prototypes and queries must share episodes and feature size, got {tuple(prototypes.shape)} "
            f"and {tuple(queries.shape)}"
        )
    if not prototypes.is_floating_point() or not queries.is_floating_point():
        raise ValueError(f"opta: expected floating-point features, got {prototypes.dtype} and {queries.dtype}")
    if not (torch.isfinite(prototypes).all() and torch.isfinite(queries).all()):
        raise ValueError("opta: expected finite features, got NaN/inf")
    return prototypes, queries, single


def transport_plan(
    prototypes: torch.Tensor,
    queries: torch.Tensor,
    *,
    epsilon: float = 0.05,
    max_iter: int = 1000,
    tol: float = 1e-4,
) -> torch.Tensor:
    r"""Entropic optimal-transport plan between prototypes and queries (OpTA's Sinkhorn).

    .. math::

        C_{ij} = \|P_i - Q_j\|^2 / \max_{kl} \|P_k - Q_l\|^2, \qquad
        \pi = \arg\min_{\pi \in U(\mu, \nu)} \langle \pi, C \rangle - \epsilon H(\pi)

    with uniform marginals ``mu = 1/N``, ``nu = 1/M``, solved by log-domain Sinkhorn on the
    scaled dual potentials (as the official code)::

        u <- eps * (log mu - logsumexp((-C + u + v) / eps, over j)) + u
        v <- eps * (log nu - logsumexp((-C + u + v) / eps, over i)) + v

    stopping when ``sum_i |u_i - u_i^prev| < tol`` (each episode of a batch on its own) or after
    ``max_iter`` iterations; ``pi = exp((-C + u + v) / eps)``. Columns then sum to ``1/M``
    exactly and rows to ``1/N`` up to the tolerance.

    Args:
        prototypes: ``[N, D]`` (or ``[E, N, D]`` for ``E`` episodes at once).
        queries: ``[M, D]`` (or ``[E, M, D]``).
        epsilon: entropic regularisation on the max-normalised cost (paper: 0.05).
        max_iter: the most Sinkhorn iterations (paper: 1000).
        tol: stopping tolerance on the change of ``u`` (paper: 1e-4).

    Returns:
        The plan ``pi``, ``[N, M]`` (or ``[E, N, M]``), in the inputs' dtype; its entries sum to 1.

    Raises:
        ValueError: mismatched shapes, non-finite values, non-positive ``epsilon``/``max_iter``.
    """
    if not float(epsilon) > 0:
        raise ValueError(f"transport_plan: expected epsilon > 0, got {epsilon}")
    if int(max_iter) < 1:
        raise ValueError(f"transport_plan: expected max_iter >= 1, got {max_iter}")
    prototypes, queries, single = _as_batch(prototypes, queries)
    cost = torch.cdist(prototypes, queries).pow(2)  # [E, N, M]
    # Per-episode max normalisation (the official code evaluates one episode at a time);
    # an all-zero cost (every point equal) is left at zero.
    scale = cost.amax(dim=(1, 2), keepdim=True)
    cost = cost / torch.where(scale > 0, scale, torch.ones_like(scale))
    rows, columns = cost.shape[1], cost.shape[2]
    log_mu = -math.log(rows)
    log_nu = -math.log(columns)
    u = cost.new_zeros(cost.shape[0], rows)
    v = cost.new_zeros(cost.shape[0], columns)
    # Each episode stops at its own criterion (as if solved alone, like the official code);
    # only the episodes still running are updated.
    active = torch.arange(cost.shape[0], device=cost.device)
    for _ in range(int(max_iter)):
        c, u_a, v_a = cost[active], u[active], v[active]
        u_new = epsilon * (log_mu - torch.logsumexp((u_a.unsqueeze(2) + v_a.unsqueeze(1) - c) / epsilon, dim=2)) + u_a
        v_new = epsilon * (log_nu - torch.logsumexp((u_new.unsqueeze(2) + v_a.unsqueeze(1) - c) / epsilon, dim=1))
        v_new = v_new + v_a
        u[active], v[active] = u_new, v_new
        running = (u_new - u_a).abs().sum(dim=1) >= tol
        if not bool(running.any()):
            break
        active = active[running]
    plan = torch.exp((-cost + u.unsqueeze(2) + v.unsqueeze(1)) / epsilon)
    return plan[0] if single else plan


def opta(
    prototypes: torch.Tensor,
    queries: torch.Tensor,
    *,
    epsilon: float = 0.05,
    max_iter: int = 1000,
    tol: float = 1e-4,
    passes: int,
    blend: float = 1.0,
) -> torch.Tensor:
    r"""Optimal-transport prototype alignment (BECLR's OpTA).

    Each pass solves :func:`transport_plan` between the current prototypes and the queries
    and maps every prototype to its barycentre in the query set:

    .. math::

        \hat P = \mathrm{diag}(\pi \mathbf 1)^{-1} \pi Q

    so every aligned prototype is a convex combination of the queries, repeated ``passes``
    times (each pass from the previous pass's prototypes, the queries unchanged). The result
    is ``blend * P_hat + (1 - blend) * P`` with the original prototypes ``P``: the official
    evaluation blends with 0.7 at more than one shot and not at 1-shot (:func:`default_passes`,
    :func:`default_blend`). Pass the features already standardised per sample
    (:func:`standardize`), as the paper does.

    Args:
        prototypes: ``[N, D]`` class prototypes (mean of each class's shots), or ``[E, N, D]``.
        queries: ``[M, D]`` query features, or ``[E, M, D]``.
        epsilon: Sinkhorn regularisation (paper: 0.05).
        max_iter: Sinkhorn iterations per pass (paper: 1000).
        tol: Sinkhorn stopping tolerance (paper: 1e-4).
        passes: number of transport passes ``delta >= 1``.
        blend: weight of the transported prototypes, in ``[0, 1]`` (1: no blend).

    Returns:
        The aligned prototypes, same shape as ``prototypes``.

    Example:
        >>> aligned = opta(torch.randn(5, 16), torch.randn(75, 16), passes=5)
        >>> aligned.shape
        torch.Size([5, 16])
    """
    if int(passes) < 1:
        raise ValueError(f"opta: expected passes >= 1, got {passes}")
    if not 0.0 <= float(blend) <= 1.0:
        raise ValueError(f"opta: expected blend in [0, 1], got {blend}")
    batched_prototypes, batched_queries, single = _as_batch(prototypes, queries)
    aligned = batched_prototypes
    for _ in range(int(passes)):
        plan = transport_plan(aligned, batched_queries, epsilon=epsilon, max_iter=max_iter, tol=tol)
        aligned = (plan @ batched_queries) / plan.sum(dim=2, keepdim=True)
    if float(blend) != 1.0:
        aligned = float(blend) * aligned + (1.0 - float(blend)) * batched_prototypes
    return aligned[0] if single else aligned


def _check_form(form: str) -> None:
    if form not in OPTA_FORMS:
        raise ValueError(f"OpTA: expected opta_form in {OPTA_FORMS}, got {form!r}")


def default_passes(shots: int, form: str = "official") -> int:
    """OpTA's number of passes for a ``shots``-shot task: 5 at 1-shot; at more shots 1
    (``"official"``, BECLR's ``evaluate.py``) or 2 (``"two-pass"``)."""
    _check_form(form)
    if int(shots) == 1:
        return 5
    return 1 if form == "official" else 2


def default_blend(shots: int, form: str = "official") -> float:
    """Weight of the transported prototypes: 0.7 at more than one shot in the ``"official"``
    form (``ratio_OT``), else 1 (no blend; the official code never blends at 1-shot)."""
    _check_form(form)
    return OFFICIAL_BLEND if form == "official" and int(shots) != 1 else 1.0


def prototype_logits(prototypes: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """Nearest-class-mean scores: minus the squared Euclidean distance to each prototype.

    Euclidean (as Prototypical Networks, Snell et al. 2017) rather than cosine because the
    features are standardised per sample (every query row has the same norm) and OpTA's
    transport cost and barycentres live in the same squared-Euclidean geometry.

    Args:
        prototypes: ``[..., N, D]``.
        queries: ``[..., M, D]``.

    Returns:
        ``[..., M, N]`` scores (larger is closer).
    """
    return -torch.cdist(queries, prototypes).pow(2)


def _logistic_predictions(
    train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor
) -> torch.Tensor:
    """Per-episode logistic regression (C=1, lbfgs, multinomial), as the BECLR evaluation."""
    from sklearn.linear_model import LogisticRegression

    predictions = []
    for episode in range(train.shape[0]):
        classifier = LogisticRegression(C=1.0, max_iter=1000, random_state=0)
        classifier.fit(train[episode].cpu().numpy(), train_labels[episode].cpu().numpy())
        predictions.append(torch.from_numpy(classifier.predict(test[episode].cpu().numpy())))
    return torch.stack(predictions).long()


def evaluate_episodes(
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    ways: int = 5,
    shots: int = 1,
    queries: int = 15,
    episodes: int = 600,
    classifier: str = "prototype",
    seed: int = 0,
    standardize_features: bool = True,
    epsilon: float = 0.05,
    max_iter: int = 1000,
    tol: float = 1e-4,
    passes: int | None = None,
    blend: float | None = None,
    opta_form: str = "official",
) -> dict[str, float]:
    """Mean accuracy of N-way K-shot episodes on frozen features, with a 95 % interval.

    Classifiers (all fit on the support set of each episode only):

    - ``"prototype"``: nearest class mean (squared Euclidean, :func:`prototype_logits`).
    - ``"opta"``: nearest class mean after OpTA aligns the means to the episode's queries
      (transductive: it uses the unlabelled queries of the episode).
    - ``"logistic"``: logistic regression (C=1) on the support rows (the paper's baseline).
    - ``"opta-logistic"``: logistic regression on the aligned prototypes (the paper's OpTA).

    The same seed gives the same episodes for every classifier, so classifiers compare on
    identical tasks.

    Args:
        features: ``[N, D]`` frozen features of the evaluation set.
        labels: ``[N]`` integer labels.
        ways: classes per episode (paper: 5).
        shots: support rows per class (1 or 5).
        queries: query rows per class (paper: 15).
        episodes: number of episodes (paper: 2000).
        classifier: one of :data:`CLASSIFIERS`.
        seed: seeds the episode sampler.
        standardize_features: standardise every row first (:func:`standardize`, paper: yes).
        epsilon: OpTA's Sinkhorn regularisation (paper: 0.05).
        max_iter: OpTA's Sinkhorn iterations (paper: 1000).
        tol: OpTA's Sinkhorn tolerance (paper: 1e-4).
        passes: OpTA passes; default :func:`default_passes` of ``opta_form``.
        blend: weight of the transported prototypes; default :func:`default_blend` of ``opta_form``.
        opta_form: ``"official"`` (BECLR's evaluate.py: 5 passes at 1-shot; 1 pass and a 0.7
            blend at more shots) or ``"two-pass"`` (2 passes, no blend, at more shots).

    Returns:
        ``{"accuracy": mean, "ci95": 1.96 * std / sqrt(episodes), "episodes": float(episodes)}``
        (fractions in ``[0, 1]``; population std, as the official evaluation).

    Raises:
        ValueError: unknown classifier, bad shapes, too few classes or rows.
    """
    if classifier not in CLASSIFIERS:
        raise ValueError(f"evaluate_episodes: expected classifier in {CLASSIFIERS}, got {classifier!r}")
    _check_form(opta_form)
    check_embeddings("features", features)
    labels = check_labels("few-shot labels", labels, features.shape[0]).to(features.device)
    generator = torch.Generator().manual_seed(int(seed))
    sampled = sample_episodes(labels, ways=ways, shots=shots, queries=queries, episodes=episodes, generator=generator)
    features = features.float()
    if standardize_features:
        features = standardize(features)
    support = features[sampled.support]  # [E, ways, shots, D]
    query = features[sampled.query].flatten(1, 2)  # [E, ways * queries, D]
    count = sampled.query.shape[0]
    device = features.device
    query_labels = torch.arange(ways, device=device).repeat_interleave(queries).expand(count, -1)
    prototypes = support.mean(dim=2)  # [E, ways, D]
    if classifier.startswith("opta"):
        prototypes = opta(
            prototypes, query, epsilon=epsilon, max_iter=max_iter, tol=tol,
            passes=default_passes(shots, opta_form) if passes is None else passes,
            blend=default_blend(shots, opta_form) if blend is None else blend,
        )  # fmt: skip
    if classifier in ("prototype", "opta"):
        predictions = prototype_logits(prototypes, query).argmax(dim=2)
    elif classifier == "logistic":
        support_labels = torch.arange(ways, device=device).repeat_interleave(shots).expand(count, -1)
        predictions = _logistic_predictions(support.flatten(1, 2), support_labels, query)
    else:  # opta-logistic: one aligned prototype per class
        prototype_labels = torch.arange(ways, device=device).expand(count, -1)
        predictions = _logistic_predictions(prototypes, prototype_labels, query)
    accuracy = (predictions.to(device) == query_labels).float().mean(dim=1)  # [E]
    mean = float(accuracy.mean())
    std = float(accuracy.std(unbiased=False)) if count > 1 else 0.0
    return {"accuracy": mean, "ci95": 1.96 * std / math.sqrt(count), "episodes": float(count)}
