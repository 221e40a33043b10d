"""Few-shot episodes and OpTA: sampling, Sinkhorn against a loop reference, barycentres, accuracy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import nnls

from contrastkit.eval.fewshot import (
    default_blend,
    default_passes,
    evaluate_episodes,
    opta,
    prototype_logits,
    sample_episodes,
    standardize,
    transport_plan,
)


def _clusters(classes: int = 8, per_class: int = 30, dim: int = 16, spread: float = 4.0, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    centres = spread * torch.randn(classes, dim, generator=generator)
    features = centres.repeat_interleave(per_class, 0) + torch.randn(classes * per_class, dim, generator=generator)
    return features, torch.arange(classes).repeat_interleave(per_class)


def _loop_sinkhorn(prototypes, queries, epsilon, max_iter, tol):
    """The official OpTA Sinkhorn, one scalar at a time (float64 Python)."""
    n, m = prototypes.shape[0], queries.shape[0]
    cost = [[float(((prototypes[i] - queries[j]) ** 2).sum()) for j in range(m)] for i in range(n)]
    top = max(max(row) for row in cost)
    cost = [[c / top for c in row] for row in cost]
    u, v = [0.0] * n, [0.0] * m

    def lse(values):
        peak = max(values)
        return peak + math.log(sum(math.exp(x - peak) for x in values))

    for _ in range(max_iter):
        previous = list(u)
        u = [epsilon * (math.log(1 / n) - lse([(-cost[i][j] + u[i] + v[j]) / epsilon for j in range(m)])) + u[i]
             for i in range(n)]
        v = [epsilon * (math.log(1 / m) - lse([(-cost[i][j] + u[i] + v[j]) / epsilon for i in range(n)])) + v[j]
             for j in range(m)]
        if sum(abs(a - b) for a, b in zip(u, previous)) < tol:
            break
    return torch.tensor([[math.exp((-cost[i][j] + u[i] + v[j]) / epsilon) for j in range(m)] for i in range(n)],
                        dtype=torch.float64)


def test_episodes_have_the_right_ways_and_shots_and_disjoint_support_and_query():
    labels = torch.arange(7).repeat_interleave(25)
    episodes = sample_episodes(labels, ways=5, shots=3, queries=10, episodes=50,
                               generator=torch.Generator().manual_seed(0))
    assert episodes.support.shape == (50, 5, 3)
    assert episodes.query.shape == (50, 5, 10)
    for e in range(50):
        classes = episodes.classes[e]
        assert len(set(classes.tolist())) == 5  # distinct classes
        support, query = episodes.support[e], episodes.query[e]
        rows = torch.cat([support.flatten(), query.flatten()]).tolist()
        assert len(set(rows)) == len(rows) == 5 * 13  # no row twice: support and query disjoint
        for c in range(5):  # each slot holds rows of its class only
            assert (labels[support[c]] == classes[c]).all() and (labels[query[c]] == classes[c]).all()
    # Every class is drawn over many episodes (the choice is random, not the first 5 classes).
    assert set(episodes.classes.flatten().tolist()) == set(range(7))


def test_episodes_skip_classes_with_too_few_rows_and_fail_without_enough_classes():
    labels = torch.cat([torch.arange(5).repeat_interleave(20), torch.full((3,), 9)])
    episodes = sample_episodes(labels, ways=5, shots=1, queries=15, episodes=20)
    assert 9 not in episodes.classes.tolist()
    with pytest.raises(ValueError, match="at least ways=6"):
        sample_episodes(labels, ways=6, shots=1, queries=15, episodes=2)


def test_transport_plan_marginals_are_uniform():
    generator = torch.Generator().manual_seed(1)
    prototypes = torch.randn(5, 8, generator=generator, dtype=torch.float64)
    queries = torch.randn(40, 8, generator=generator, dtype=torch.float64)
    plan = transport_plan(prototypes, queries, tol=1e-10, max_iter=5000)
    assert torch.allclose(plan.sum(1), torch.full((5,), 1 / 5, dtype=torch.float64), atol=1e-8)
    assert torch.allclose(plan.sum(0), torch.full((40,), 1 / 40, dtype=torch.float64), atol=1e-10)
    # At the paper's tolerance the rows are uniform to within ~tol / epsilon (relative).
    plan = transport_plan(prototypes, queries)
    assert torch.allclose(plan.sum(1) * 5, torch.ones(5, dtype=torch.float64), atol=5e-3)


def test_transport_plan_equals_the_loop_reference_and_batches_episode_by_episode():
    generator = torch.Generator().manual_seed(2)
    prototypes = torch.randn(3, 4, 5, generator=generator, dtype=torch.float64)
    queries = torch.randn(3, 9, 5, generator=generator, dtype=torch.float64)
    queries[1] *= 3.0  # different episodes converge after different numbers of iterations
    batched = transport_plan(prototypes, queries, epsilon=0.05, max_iter=300, tol=1e-4)
    for e in range(3):
        reference = _loop_sinkhorn(prototypes[e], queries[e], 0.05, 300, 1e-4)
        assert torch.allclose(transport_plan(prototypes[e], queries[e], max_iter=300), reference, atol=1e-12)
        assert torch.allclose(batched[e], reference, atol=1e-12)


def test_opta_barycentres_are_convex_combinations_of_the_queries():
    generator = torch.Generator().manual_seed(3)
    prototypes = 3 * torch.randn(5, 4, generator=generator, dtype=torch.float64)
    queries = torch.randn(20, 4, generator=generator, dtype=torch.float64)
    aligned = opta(prototypes, queries, passes=2)
    assert aligned.shape == prototypes.shape
    for row in aligned:
        # min ||[Q^T; 100 * 1^T] w - [p; 100]|| over w >= 0: zero iff p is a convex combination.
        system = np.vstack([queries.T.numpy(), 100 * np.ones((1, 20))])
        _, residual = nnls(system, np.concatenate([row.numpy(), [100.0]]))
        assert residual < 1e-8
    # The prototypes moved (they started far outside the queries' hull).
    assert (aligned - prototypes).norm() > 1.0


def test_opta_passes_compose_and_equal_the_barycentric_map_of_the_plan():
    generator = torch.Generator().manual_seed(4)
    prototypes = torch.randn(5, 6, generator=generator, dtype=torch.float64)
    queries = torch.randn(30, 6, generator=generator, dtype=torch.float64)
    plan = transport_plan(prototypes, queries)
    once = opta(prototypes, queries, passes=1)
    assert torch.allclose(once, (plan / plan.sum(1, keepdim=True)) @ queries, atol=1e-12)
    assert torch.allclose(opta(prototypes, queries, passes=3), opta(opta(once, queries, passes=1), queries, passes=1))
    with pytest.raises(ValueError, match="passes >= 1"):
        opta(prototypes, queries, passes=0)


def test_prototype_classifier_is_perfect_on_separable_clusters():
    features, labels = _clusters(spread=10.0)
    for classifier in ("prototype", "opta"):
        result = evaluate_episodes(features, labels, shots=1, episodes=100, classifier=classifier)
        assert result["accuracy"] == 1.0 and result["ci95"] == 0.0 and result["episodes"] == 100.0
    scores = prototype_logits(torch.eye(3), torch.eye(3) * 0.9)
    assert torch.equal(scores.argmax(1), torch.arange(3))


def test_opta_beats_plain_prototypes_at_one_shot_on_noisy_clusters():
    features, labels = _clusters(spread=0.6, per_class=40, dim=32, seed=5)
    common = dict(shots=1, episodes=150, seed=0)
    plain = evaluate_episodes(features, labels, classifier="prototype", **common)
    aligned = evaluate_episodes(features, labels, classifier="opta", **common)
    assert aligned["accuracy"] > plain["accuracy"] + 0.1  # measured: 0.95 vs 0.69


def test_evaluate_episodes_is_seeded_and_standardizes_rows():
    features, labels = _clusters(spread=1.0)
    first = evaluate_episodes(features, labels, shots=1, episodes=40, seed=3)
    assert first == evaluate_episodes(features, labels, shots=1, episodes=40, seed=3)
    # Per-sample standardisation: a row's scale and offset do not matter.
    rescaled = features * torch.linspace(0.5, 3.0, features.shape[0]).unsqueeze(1) + 2.0
    assert first == evaluate_episodes(rescaled, labels, shots=1, episodes=40, seed=3)
    rows = standardize(torch.randn(4, 10))
    assert torch.allclose(rows.mean(1), torch.zeros(4), atol=1e-6)
    assert torch.allclose(rows.std(1), torch.ones(4), atol=1e-5)
    with pytest.raises(ValueError, match="classifier"):
        evaluate_episodes(features, labels, classifier="svm")
    with pytest.raises(ValueError, match="labels"):
        evaluate_episodes(features, labels[:-1])


def _official_episode(support, query, shots, ot_passes=None, ratio_ot=0.7):
    """BECLR's evaluate.py for one episode, slowly: prototypes = mean of the shots; ``ot_passes``
    OpTA passes (5 at 1-shot, else 1), each the barycentric map of the loop Sinkhorn; at more than
    one shot ``ratio_ot * transported + (1 - ratio_ot) * original``; nearest prototype."""
    ways = support.shape[0]
    before = torch.stack([sum(support[c, k] for k in range(shots)) / shots for c in range(ways)]).double()
    queries = query.double()
    ot_passes = (5 if shots == 1 else 1) if ot_passes is None else ot_passes
    prototypes = before
    for _ in range(ot_passes):
        plan = _loop_sinkhorn(prototypes, queries, 0.05, 1000, 1e-4)
        prototypes = torch.stack([sum(plan[i, j] * queries[j] for j in range(queries.shape[0])) / plan[i].sum()
                                  for i in range(ways)])
    if shots != 1:
        prototypes = ratio_ot * prototypes + (1 - ratio_ot) * before
    predictions = [min(range(ways), key=lambda c: float(((q - prototypes[c]) ** 2).sum())) for q in queries]
    return prototypes, predictions


def test_official_opta_defaults_are_one_pass_and_blend_at_five_shot():
    assert (default_passes(1), default_blend(1)) == (5, 1.0)
    assert (default_passes(5), default_blend(5)) == (1, 0.7)
    assert (default_passes(5, "two-pass"), default_blend(5, "two-pass")) == (2, 1.0)
    with pytest.raises(ValueError, match="opta_form"):
        default_passes(5, "paper")


@pytest.mark.parametrize("shots", [1, 5])
def test_default_opta_equals_the_official_evaluation_loop(shots):
    features, labels = _clusters(classes=6, per_class=12, dim=6, spread=0.8, seed=11)
    features = standardize(features.double())
    sampled = sample_episodes(labels, ways=5, shots=shots, queries=5, episodes=3,
                              generator=torch.Generator().manual_seed(0))
    correct = []
    for e in range(3):
        support = features[sampled.support[e]]
        query = features[sampled.query[e]].flatten(0, 1)
        expected, predictions = _official_episode(support, query, shots)
        aligned = opta(support.mean(1), query, passes=default_passes(shots), blend=default_blend(shots))
        assert torch.allclose(aligned, expected, atol=1e-6)
        if shots == 5:
            # A wrong pass count or a missing blend gives other prototypes.
            assert not torch.allclose(opta(support.mean(1), query, passes=2), expected, atol=1e-3)
            assert not torch.allclose(opta(support.mean(1), query, passes=1), expected, atol=1e-3)
            assert not torch.allclose(opta(support.mean(1), query, passes=2, blend=0.7), expected, atol=1e-3)
        truth = torch.arange(5).repeat_interleave(5)
        correct.append((torch.tensor(predictions) == truth).double().mean())
    # evaluate_episodes' default is the official form (same episodes from the same seed).
    result = evaluate_episodes(features, labels, shots=shots, queries=5, episodes=3, classifier="opta", seed=0)
    assert result["accuracy"] == pytest.approx(float(torch.stack(correct).mean()), abs=1e-6)


def test_two_pass_form_is_the_earlier_variant():
    features, labels = _clusters(spread=0.7, seed=12)
    common = dict(shots=5, episodes=30, seed=1, classifier="opta")
    two_pass = evaluate_episodes(features, labels, opta_form="two-pass", **common)
    assert two_pass == evaluate_episodes(features, labels, passes=2, blend=1.0, **common)
    assert evaluate_episodes(features, labels, **common) == evaluate_episodes(features, labels, passes=1, blend=0.7,
                                                                              **common)
    with pytest.raises(ValueError, match="blend"):
        opta(torch.randn(5, 4), torch.randn(10, 4), passes=1, blend=1.5)
