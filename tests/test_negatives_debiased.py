"""DebCSE-style sampler: scores against scalar references, weights by hand, never the anchor,
and the balancing property of inverse propensity weighting on synthetic data."""

import pytest
import torch
import torch.nn.functional as F

from contrastkit.negatives.debiased import (
    DebiasedPairSampler,
    inverse_propensity_weights,
    propensity_scores,
    surface_similarity,
)


def test_surface_similarity_hand_case():
    # tokens: {the, cat, sat} vs {the, cat, sat, on, mat} with counts 3 and 6 ("the" twice)
    got = surface_similarity("The cat sat.", "the cat sat on the mat", jaccard_weight=0.5)
    assert got == pytest.approx(0.5 * 3 / 5 + 0.5 * 3 / 6)
    assert surface_similarity("a b", "a b", jaccard_weight=0.3) == pytest.approx(1.0)
    assert surface_similarity("a", "b c", jaccard_weight=1.0) == 0.0


def test_batched_surface_and_semantic_scores_match_scalar_references():
    generator = torch.Generator().manual_seed(0)
    words = [f"w{i}" for i in range(15)]
    texts = [
        " ".join(words[int(j)] for j in torch.randint(0, 15, (int(n),), generator=generator))
        for n in torch.randint(1, 12, (20,), generator=generator)
    ]
    embeddings = torch.randn(20, 6, generator=generator)
    sampler = DebiasedPairSampler(texts, embeddings, candidates=7, jaccard_weight=0.3)
    anchors = torch.tensor([0, 5, 19, 5])
    pool = sampler.candidate_pool(anchors, generator)
    surface = sampler.surface_scores(anchors, pool)
    semantic = sampler.semantic_scores(anchors, pool)
    for row, anchor in enumerate(anchors.tolist()):
        for column, candidate in enumerate(pool[row].tolist()):
            expected = surface_similarity(texts[anchor], texts[candidate], jaccard_weight=0.3)
            assert float(surface[row, column]) == pytest.approx(expected, abs=1e-6)
            cosine = F.cosine_similarity(embeddings[anchor], embeddings[candidate], dim=0)
            assert float(semantic[row, column]) == pytest.approx(float(cosine), abs=1e-5)


def test_propensity_and_weights_hand_case():
    # Four bins of width 0.25. Selected entries: bins 0, 0, 2, 3; the population adds bins 0, 1, 2, 2.
    surface = torch.tensor([[0.10, 0.20, 0.30, 0.60], [0.05, 0.55, 0.70, 0.99]])
    selected = torch.tensor([[True, True, False, False], [False, False, True, True]])
    semantic = torch.tensor([[0.8, 0.4, 0.9, -0.3], [0.1, 0.2, 0.6, 0.5]])
    # selection: p = #selected_b / #population_b: bin 0 -> 2/3, bin 1 -> 0/1, bin 2 -> 1/3, bin 3 -> 1/1
    selection = propensity_scores(surface, selected, bins=4)
    torch.testing.assert_close(selection, torch.tensor([[2 / 3, 2 / 3, 0.0, 1 / 3], [2 / 3, 1 / 3, 1 / 3, 1.0]]))
    # density: p = #selected_b / #selected (4): bin 0 -> 1/2, bin 2 -> 1/4, bin 3 -> 1/4
    density = propensity_scores(surface, selected, bins=4, propensity="density")
    torch.testing.assert_close(density, torch.tensor([[0.5, 0.5, 0.0, 0.25], [0.5, 0.25, 0.25, 0.25]]))
    positive = inverse_propensity_weights(surface, selected, semantic=semantic, bins=4)
    torch.testing.assert_close(positive, torch.tensor([[0.8 * 1.5, 0.4 * 1.5, 0.0, 0.0], [0.0, 0.0, 0.6 * 3, 0.5]]))
    negative = inverse_propensity_weights(surface, selected, bins=4, propensity="density")
    torch.testing.assert_close(negative, torch.tensor([[2.0, 2.0, 0.0, 0.0], [0.0, 0.0, 4.0, 4.0]]))
    # A population that excludes some entries changes the selection propensity: bin 0 -> 2/2.
    population = torch.tensor([[True, True, True, True], [False, True, True, True]])
    torch.testing.assert_close(propensity_scores(surface, selected, bins=4, population=population)[0, 0], torch.tensor(1.0))


def test_sampler_never_returns_the_anchor():
    texts = ["a b", "a b c", "b c d", "c d e", "d e f", "a f", "b e"]
    generator = torch.Generator().manual_seed(1)
    embeddings = torch.randn(7, 4, generator=generator)
    for candidates in (None, 1, 3):
        sampler = DebiasedPairSampler(texts, embeddings, candidates=candidates, bins=3)
        anchors = torch.arange(7).repeat(30)
        positives, negatives = sampler.sample(anchors, generator)
        assert (positives != anchors).all() and (negatives != anchors).all()
        assert positives.min() >= 0 and positives.max() < 7 and negatives.max() < 7


def test_sampled_pairs_follow_the_eligibility_rules():
    generator = torch.Generator().manual_seed(2)
    texts = [" ".join(f"t{int(j)}" for j in torch.randint(0, 12, (6,), generator=generator)) for _ in range(30)]
    sampler = DebiasedPairSampler(texts, torch.randn(30, 5, generator=generator), candidates=None)
    anchors = torch.arange(30)
    pool = sampler.candidate_pool(anchors)
    surface, semantic = sampler.surface_scores(anchors, pool), sampler.semantic_scores(anchors, pool)
    eligible_positive, eligible_negative = sampler.eligibility(surface, semantic)
    for _ in range(5):
        positives, negatives = sampler.sample(anchors, generator)
        positive_column = (pool == positives.unsqueeze(1)).float().argmax(dim=1)
        negative_column = (pool == negatives.unsqueeze(1)).float().argmax(dim=1)
        assert eligible_positive[anchors, positive_column].all()
        assert eligible_negative[anchors, negative_column].all()
    # Positives have high v, hard negatives low v: every positive beats every hard negative per row.
    best_negative = torch.where(eligible_negative, semantic, torch.full_like(semantic, -2)).max(dim=1).values
    worst_positive = torch.where(eligible_positive, semantic, torch.full_like(semantic, 2)).min(dim=1).values
    assert (worst_positive > best_negative).all()


def _synthetic_corpus(seed=0, size=300, vocabulary=300, topics=6, dim=32):
    """Texts whose frozen embeddings follow their surface: bag-of-words, topic and length directions."""
    generator = torch.Generator().manual_seed(seed)
    topic_words = torch.stack([torch.randperm(vocabulary, generator=generator)[:60] for _ in range(topics)])
    topic = torch.randint(0, topics, (size,), generator=generator)
    lengths = torch.randint(4, 30, (size,), generator=generator)
    texts, bags = [], torch.zeros(size, vocabulary)
    for i in range(size):
        count = int(lengths[i])
        from_topic = torch.rand(count, generator=generator) < 0.6
        words = torch.where(
            from_topic,
            topic_words[topic[i]][torch.randint(0, 60, (count,), generator=generator)],
            torch.randint(0, vocabulary, (count,), generator=generator),
        )
        texts.append(" ".join(f"w{w}" for w in words.tolist()))
        bags[i] = torch.bincount(words, minlength=vocabulary).float()
    projection = torch.randn(vocabulary, dim, generator=generator)
    topic_vectors = F.normalize(torch.randn(topics, dim, generator=generator), dim=1)
    length_direction = F.normalize(torch.randn(dim, generator=generator), dim=0)
    standardized_length = (lengths.float() - lengths.float().mean()) / lengths.float().std()
    embeddings = (
        F.normalize(bags @ projection, dim=1)
        + topic_vectors[topic]
        + standardized_length[:, None] * length_direction
        + 0.05 * torch.randn(size, dim, generator=generator)
    )
    return texts, embeddings, lengths


def _standardized_mean_difference(sample, population):
    return float((sample.mean() - population.mean()) / population.std())


def test_inverse_propensity_weighting_balances_surface_scores_of_positives():
    """METHODS #32's check, as a covariate-balance diagnostic.

    On a corpus where v follows u (correlation ~0.6), positives drawn uniformly among the
    high-v candidates have much higher surface overlap and much smaller length differences
    than the candidate population. Inverse propensity weighting must shrink both gaps
    (standardized mean differences) clearly; drawing uniformly would leave them unchanged.
    """
    texts, embeddings, lengths = _synthetic_corpus()
    sampler = DebiasedPairSampler(texts, embeddings, candidates=None)
    anchors = torch.arange(len(texts))
    pool = sampler.candidate_pool(anchors)
    surface, semantic = sampler.surface_scores(anchors, pool), sampler.semantic_scores(anchors, pool)
    length_difference = (lengths.unsqueeze(1) - lengths[pool]).abs().float()
    correlation = torch.corrcoef(torch.stack([surface.flatten(), semantic.flatten()]))[0, 1]
    assert correlation > 0.4  # the bias the sampler is for is present
    eligible, _ = sampler.eligibility(surface, semantic)

    generator = torch.Generator().manual_seed(3)
    sampled_columns, uniform_columns = [], []
    for _ in range(4):
        positives, _ = sampler.sample(anchors, generator)
        sampled_columns.append((pool == positives.unsqueeze(1)).float().argmax(dim=1))
        uniform_columns.append(torch.multinomial(eligible.float(), 1, generator=generator).squeeze(1))
    rows = anchors.repeat(4)
    sampled, uniform = torch.cat(sampled_columns), torch.cat(uniform_columns)

    surface_gap_sampled = _standardized_mean_difference(surface[rows, sampled], surface)
    surface_gap_uniform = _standardized_mean_difference(surface[rows, uniform], surface)
    length_gap_sampled = _standardized_mean_difference(length_difference[rows, sampled], length_difference)
    length_gap_uniform = _standardized_mean_difference(length_difference[rows, uniform], length_difference)
    assert surface_gap_uniform > 0.6  # uniform high-v positives are surface-biased
    assert abs(surface_gap_sampled) < 0.75 * surface_gap_uniform
    assert length_gap_uniform < -0.6
    assert abs(length_gap_sampled) < 0.9 * abs(length_gap_uniform)


def test_bad_input():
    embeddings = torch.randn(3, 4)
    with pytest.raises(ValueError, match="word token"):
        DebiasedPairSampler(["a b", "...", "c"], embeddings)
    with pytest.raises(ValueError, match="one row per text"):
        DebiasedPairSampler(["a", "b"], embeddings)
    with pytest.raises(ValueError, match="at least 2"):
        DebiasedPairSampler(["a"], embeddings[:1])
    with pytest.raises(ValueError, match="positive_quantile"):
        DebiasedPairSampler(["a", "b", "c"], embeddings, positive_quantile=1.5)
    with pytest.raises(ValueError, match="propensity"):
        DebiasedPairSampler(["a", "b", "c"], embeddings, propensity="kernel")
    sampler = DebiasedPairSampler(["a", "b", "c"], embeddings)
    with pytest.raises(ValueError, match="anchor_indices"):
        sampler.sample(torch.tensor([3]))
    with pytest.raises(ValueError, match="anchor_indices"):
        sampler.sample(torch.tensor([0.0]))
    with pytest.raises(ValueError, match="surface"):
        propensity_scores(torch.tensor([1.5]), torch.tensor([True]))
    with pytest.raises(ValueError, match="population"):
        propensity_scores(torch.tensor([0.5]), torch.tensor([True]), population=torch.tensor([False]))
    with pytest.raises(ValueError, match="word token"):
        surface_similarity("", "a")
