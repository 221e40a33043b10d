"""Tests for the isotropy, repetition and diversity metrics (contrastkit.eval.generation_metrics).

Isotropy is checked against a double loop over token pairs, repetition and diversity against
hand-computed counts; sequence_isotropy against the states of a tiny random GPT-2.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from contrastkit.eval.generation_metrics import diversity, isotropy, repetition, sequence_isotropy
from tests.test_eval_decoding import _full_pass, _gpt2


@pytest.fixture(scope="module")
def gpt2() -> torch.nn.Module:
    return _gpt2()


# ---------------------------------------------------------------------------------------
# isotropy
# ---------------------------------------------------------------------------------------


def _naive_pair_sums(states: torch.Tensor) -> tuple[float, int]:
    total, pairs = 0.0, 0
    for i in range(states.shape[0]):
        for j in range(states.shape[0]):
            if i != j:
                total += float(F.cosine_similarity(states[i], states[j], dim=0))
                pairs += 1
    return total, pairs


def test_isotropy_matches_double_loop():
    generator = torch.Generator().manual_seed(0)
    # A shared offset makes the states anisotropic, so the score is far from both 0 and 1.
    offset = torch.randn(16, generator=generator, dtype=torch.float64)
    sequences = [torch.randn(length, 16, generator=generator, dtype=torch.float64) + offset for length in (3, 7, 12)]
    sums = [_naive_pair_sums(states) for states in sequences]
    pooled = 1 - sum(s for s, _ in sums) / sum(p for _, p in sums)
    per_sequence = sum(1 - s / p for s, p in sums) / len(sums)
    assert isotropy(sequences) == pytest.approx(pooled, abs=1e-10)
    assert isotropy(sequences, average="sequences") == pytest.approx(per_sequence, abs=1e-10)
    assert abs(pooled - per_sequence) > 1e-4, "the two averages must differ for this check to bite"
    assert isotropy(sequences[1]) == pytest.approx(1 - sums[1][0] / sums[1][1], abs=1e-10)
    batch = torch.stack([sequences[2][:5], sequences[2][5:10]])
    assert isotropy(batch) == pytest.approx(isotropy([batch[0], batch[1]]), abs=1e-12)
    # A one-token sequence adds no pair and does not change the pooled score.
    assert isotropy(sequences + [torch.randn(1, 16, dtype=torch.float64)]) == pytest.approx(pooled, abs=1e-10)


def test_isotropy_extremes():
    vector = torch.randn(8)
    assert isotropy(vector.repeat(6, 1)) == pytest.approx(0.0, abs=1e-6)
    orthogonal, _ = torch.linalg.qr(torch.randn(32, 32, generator=torch.Generator().manual_seed(1)))
    assert isotropy(orthogonal[:10]) == pytest.approx(1.0, abs=1e-6)
    random_high_dim = torch.randn(50, 4096, generator=torch.Generator().manual_seed(2))
    assert isotropy(random_high_dim) == pytest.approx(1.0, abs=0.02)
    assert isotropy(torch.stack([vector, -vector])) == pytest.approx(2.0, abs=1e-6)


def test_sequence_isotropy_matches_per_row_states(gpt2):
    rows = [[5, 9, 13, 21, 2], [8, 30, 4]]
    states = [_full_pass(gpt2, row)[1] for row in rows]
    expected = isotropy(states)
    assert sequence_isotropy(gpt2, torch.tensor([rows[0]])) == pytest.approx(isotropy(states[0]), abs=1e-10)
    left = torch.tensor([rows[0], [1, 1] + rows[1]])
    right = torch.tensor([rows[0], rows[1] + [1, 1]])
    left_mask = torch.tensor([[1] * 5, [0, 0, 1, 1, 1]])
    right_mask = torch.tensor([[1] * 5, [1, 1, 1, 0, 0]])
    assert sequence_isotropy(gpt2, left, attention_mask=left_mask) == pytest.approx(expected, abs=1e-10)
    assert sequence_isotropy(gpt2, right, attention_mask=right_mask) == pytest.approx(expected, abs=1e-10)
    assert sequence_isotropy(gpt2, left, attention_mask=left_mask, average="sequences") == pytest.approx(
        isotropy(states, average="sequences"), abs=1e-10
    )


def test_isotropy_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one sequence"):
        isotropy([])
    with pytest.raises(ValueError, match="at least 2 tokens"):
        isotropy([torch.randn(1, 4)])
    with pytest.raises(ValueError, match=r"\[T, D\]"):
        isotropy(torch.randn(4))
    with pytest.raises(ValueError, match="float"):
        isotropy([torch.ones(3, 4, dtype=torch.long)])
    with pytest.raises(ValueError, match="finite"):
        isotropy(torch.tensor([[1.0, float("nan")], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="average"):
        isotropy(torch.randn(3, 4), average="tokens")


# ---------------------------------------------------------------------------------------
# repetition and diversity
# ---------------------------------------------------------------------------------------


def test_repetition_hand_computed():
    # bigrams of 1 2 1 2 1: (1,2) (2,1) (1,2) (2,1): 2 unique of 4.
    assert repetition([1, 2, 1, 2, 1], 2) == pytest.approx(0.5)
    # trigrams: (1,2,1) (2,1,2) (1,2,1): 2 unique of 3.
    assert repetition([1, 2, 1, 2, 1], 3) == pytest.approx(1 / 3)
    assert repetition([4, 4, 4, 4], 1) == pytest.approx(0.75)
    assert repetition([1, 2, 3, 4], 2) == 0.0
    # Counts are summed over sequences, not averaged: (2 + 3) unique of (4 + 3) bigrams.
    pooled = repetition([[1, 2, 1, 2, 1], [5, 6, 7, 8]], 2)
    assert pooled == pytest.approx(1 - 5 / 7)
    assert pooled != pytest.approx((0.5 + 0.0) / 2)
    # An n-gram repeated across two sequences is unique in each.
    assert repetition([[1, 2], [1, 2]], 2) == 0.0
    assert repetition(torch.tensor([[1, 2, 1, 2, 1], [5, 6, 7, 8, 9]]), 2) == pytest.approx(1 - 6 / 8)
    assert repetition("the cat the cat".split(), 2) == pytest.approx(1 - 2 / 3)


def test_repetition_match_simctg_drops_the_last_ngram():
    # SimCTG counts bigrams (1,2) (2,1) (1,2) of 1 2 1 2 3, not the last (2,3): 2 unique of 3.
    assert repetition([1, 2, 1, 2, 3], 2, match_simctg=True) == pytest.approx(1 / 3)
    assert repetition([1, 2, 1, 2, 3], 2) == pytest.approx(1 / 4)


def test_diversity_hand_computed():
    tokens = [1, 2, 1, 2, 1, 2]
    # rep-2: 2 unique of 5; rep-3: 2 of 4; rep-4: 2 of 3.
    expected = (2 / 5) * (2 / 4) * (2 / 3)
    assert diversity(tokens) == pytest.approx(expected)
    assert diversity([1, 2, 3, 4, 5]) == 1.0
    assert diversity([[1, 2, 3, 4], [1, 2, 3, 4]]) == 1.0


def test_repetition_rejects_bad_input():
    with pytest.raises(ValueError, match="n:"):
        repetition([1, 2, 3], 0)
    with pytest.raises(ValueError, match="empty"):
        repetition([], 2)
    with pytest.raises(ValueError, match="4-gram"):
        repetition([[1, 2], [3]], 4)
    with pytest.raises(ValueError, match="mix"):
        repetition([[1, 2], 3], 2)
    with pytest.raises(ValueError, match="list of token ids"):
        repetition("abc", 2)
    with pytest.raises(ValueError, match="4-gram"):
        diversity([1, 2, 3])
