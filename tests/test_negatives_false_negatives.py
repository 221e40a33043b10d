"""False-negative masking: hand case, positives kept, exact removal from info_nce, rate."""

import pytest
import torch

from contrastkit.functional.contrastive import info_nce
from contrastkit.negatives.false_negatives import (
    false_negative_mask,
    false_negative_weights,
    masking_rate,
)


def test_hand_case():
    anchors = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    candidates = torch.tensor(
        [
            [1.0, 0.0],  # row 0's positive (cos 1 with row 0): never masked for row 0
            [0.0, 2.0],  # row 1's positive; cos 0 with row 0
            [1.0, 0.1],  # cos 0.995 with row 0 -> masked for row 0; cos 0.0995 with row 1
            [0.6, 0.8],  # cos 0.6 / 0.8: kept at 0.95, masked for row 1 at 0.8
        ]
    )
    mask = false_negative_mask(anchors, candidates, threshold=0.95)
    assert mask.tolist() == [[False, False, True, False], [False, False, False, False]]
    mask = false_negative_mask(anchors, candidates, threshold=0.8)
    assert mask.tolist() == [[False, False, True, False], [False, False, False, True]]
    weights = false_negative_weights(mask, extra_columns=2)
    assert weights.tolist() == [[1, 1, 0, 1, 1, 1], [1, 1, 1, 0, 1, 1]]
    assert masking_rate(mask) == pytest.approx(2 / 6)


def test_positive_never_masked_even_at_lowest_threshold():
    generator = torch.Generator().manual_seed(0)
    anchors, candidates = torch.randn(5, 4, generator=generator), torch.randn(9, 4, generator=generator)
    positive_index = torch.tensor([8, 0, 3, 3, 1])
    mask = false_negative_mask(anchors, candidates, threshold=-1.0, positive_index=positive_index)
    expected = torch.ones(5, 9, dtype=torch.bool)
    expected[torch.arange(5), positive_index] = False
    assert torch.equal(mask, expected)
    assert masking_rate(mask, positive_index) == 1.0


def test_mask_matches_pairwise_loop():
    generator = torch.Generator().manual_seed(1)
    anchors = torch.randn(6, 3, generator=generator)
    candidates = torch.cat([anchors + 0.3 * torch.randn(6, 3, generator=generator), torch.randn(4, 3, generator=generator)])
    threshold = 0.7
    mask = false_negative_mask(anchors, candidates, threshold=threshold)
    for i in range(6):
        for j in range(10):
            cosine = torch.nn.functional.cosine_similarity(anchors[i], candidates[j], dim=0)
            assert bool(mask[i, j]) == (i != j and float(cosine) >= threshold)


def _naive_loss_without_dropped(query, key, negatives, mask, temperature):
    """Per-row InfoNCE where each row's dropped columns are simply left out of the softmax."""
    candidates = torch.cat([key, negatives])
    rows = []
    for i in range(query.shape[0]):
        kept = [j for j in range(candidates.shape[0]) if not bool(mask[i, j])]
        logits = torch.stack(
            [torch.nn.functional.cosine_similarity(query[i], candidates[j], dim=0) / temperature for j in kept]
        )
        rows.append(torch.logsumexp(logits, dim=0) - logits[kept.index(i)])
    return torch.stack(rows)


def test_info_nce_with_weights_equals_loss_without_dropped_columns():
    generator = torch.Generator().manual_seed(2)
    batch, dim, extra = 6, 5, 3
    make = lambda n: torch.randn(n, dim, generator=generator, dtype=torch.float64, requires_grad=True)
    query, key, negatives = make(batch), make(batch), make(extra)
    # The frozen scorer sees near-copies of some candidates next to the anchors.
    scorer_anchor = torch.randn(batch, dim, generator=generator, dtype=torch.float64)
    scorer_candidates = torch.randn(batch + extra, dim, generator=generator, dtype=torch.float64)
    scorer_candidates[3] = scorer_anchor[0] * 2  # candidate 3 is a false negative of row 0
    scorer_candidates[batch + 1] = scorer_anchor[4] + 1e-3  # a hard negative too close to row 4
    mask = false_negative_mask(scorer_anchor, scorer_candidates, threshold=0.95)
    assert bool(mask[0, 3]) and bool(mask[4, batch + 1])
    weights = false_negative_weights(mask, dtype=torch.float64)

    temperature = 0.05
    for chunk_size in ("auto", 2):
        got = info_nce(query, key, negatives=negatives, temperature=temperature, weights=weights,
                       reduction="none", chunk_size=chunk_size)
        expected = _naive_loss_without_dropped(query, key, negatives, mask, temperature)
        torch.testing.assert_close(got, expected)
        # Row 0's loss has exactly zero gradient with respect to its dropped column (key 3),
        # and row 4's with respect to the dropped hard negative; kept columns do get gradient.
        zero = torch.zeros(dim, dtype=torch.float64)
        grad_key, grad_negatives = torch.autograd.grad(got[0], [key, negatives], retain_graph=True)
        assert torch.equal(grad_key[3], zero)
        assert grad_key[2].abs().sum() > 0 and grad_negatives[1].abs().sum() > 0
        grad_key, grad_negatives = torch.autograd.grad(got[4], [key, negatives], retain_graph=True)
        assert torch.equal(grad_negatives[1], zero)
        assert grad_key[3].abs().sum() > 0 and grad_negatives[0].abs().sum() > 0
        grads = torch.autograd.grad(got.sum(), [query, key, negatives])
        expected_grads = torch.autograd.grad(expected.sum(), [query, key, negatives])
        for grad, expected_grad in zip(grads, expected_grads):
            torch.testing.assert_close(grad, expected_grad)


def test_masking_rate_counts_negative_entries():
    mask = torch.zeros(4, 8, dtype=torch.bool)
    mask[0, 5] = mask[1, 6] = mask[2, 0] = True
    assert masking_rate(mask) == pytest.approx(3 / 28)
    mask[3, 3] = True  # a masked positive is an error, not a rate
    with pytest.raises(ValueError, match="positive"):
        masking_rate(mask)


def test_bad_input():
    anchors, candidates = torch.randn(4, 3), torch.randn(6, 3)
    with pytest.raises(ValueError, match="threshold"):
        false_negative_mask(anchors, candidates, threshold=1.5)
    with pytest.raises(ValueError, match="feature size"):
        false_negative_mask(anchors, torch.randn(6, 2))
    with pytest.raises(ValueError, match="positive_index"):
        false_negative_mask(anchors, candidates[:3])
    with pytest.raises(ValueError, match="positive_index"):
        false_negative_mask(anchors, candidates, positive_index=torch.tensor([0, 1, 2, 6]))
    with pytest.raises(ValueError, match="mask"):
        false_negative_weights(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="extra_columns"):
        false_negative_weights(torch.zeros(2, 3, dtype=torch.bool), extra_columns=-1)
