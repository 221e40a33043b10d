"""context_window_positives against a loop over sentences: window, documents, uniform choice."""

import pytest
import torch

from contrastkit.negatives.context import context_window_positives


def _valid_context(document_ids, window):
    ids = document_ids.tolist()
    return [
        [j for j in range(len(ids)) if 0 < abs(i - j) <= window and ids[j] == ids[i]]
        for i in range(len(ids))
    ]


@pytest.mark.parametrize("window", [1, 2, 4])
def test_respects_window_and_documents(window):
    generator = torch.Generator().manual_seed(0)
    # Documents of length 1..6 in order, including one-sentence documents; ids repeat in later,
    # distant runs (ids 0 and 1 twice), which must not matter.
    lengths = [3, 1, 6, 2, 1, 5, 4]
    document_ids = torch.cat([torch.full((n,), d % 5) for d, n in enumerate(lengths)])
    valid = _valid_context(document_ids, window)
    seen = [set() for _ in valid]
    for _ in range(300):
        positives = context_window_positives(document_ids, window=window, generator=generator)
        assert positives.dtype == torch.long and positives.shape == document_ids.shape
        for i, j in enumerate(positives.tolist()):
            if valid[i]:
                assert j in valid[i]
                seen[i].add(j)
            else:
                assert j == -1
    # Every candidate in the window gets drawn: the choice is not stuck on one offset.
    assert all(seen[i] == set(valid[i]) for i in range(len(valid)))


def test_choice_is_uniform():
    generator = torch.Generator().manual_seed(1)
    document_ids = torch.zeros(9, dtype=torch.long)
    draws = torch.stack([context_window_positives(document_ids, window=2, generator=generator) for _ in range(4000)])
    counts = torch.bincount(draws[:, 4], minlength=9).float()  # middle sentence: 4 candidates
    assert counts[[2, 3, 5, 6]].sum() == 4000
    assert ((counts[[2, 3, 5, 6]] / 4000 - 0.25).abs() < 0.03).all()


def test_generator_makes_it_reproducible():
    document_ids = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    first = context_window_positives(document_ids, generator=torch.Generator().manual_seed(5))
    second = context_window_positives(document_ids, generator=torch.Generator().manual_seed(5))
    assert torch.equal(first, second)


def test_edge_cases_and_bad_input():
    assert context_window_positives(torch.tensor([7])).tolist() == [-1]
    assert context_window_positives(torch.zeros(0, dtype=torch.long)).shape == (0,)
    with pytest.raises(ValueError, match="window"):
        context_window_positives(torch.tensor([0, 0]), window=0)
    with pytest.raises(ValueError, match="document_ids"):
        context_window_positives(torch.tensor([0.0, 0.0]))
    with pytest.raises(ValueError, match="document_ids"):
        context_window_positives(torch.zeros(2, 2, dtype=torch.long))
