"""GroupedQueue: per-group FIFO against Python lists, wrap-around, isolation, masks, checkpoints."""

import pytest
import torch

from contrastkit.functional.contrastive import info_nce
from contrastkit.negatives.grouped_queue import GroupedQueue


def _in_age_order(bank, group):
    stored = bank.negatives(group)
    if int(bank.filled[group]) == bank.size_per_group:
        ptr = int(bank.ptr[group])
        return torch.cat([stored[ptr:], stored[:ptr]])
    return stored


def test_fifo_per_group_against_list_reference():
    size, groups, dim = 4, 3, 2
    bank = GroupedQueue(dim, size, groups)
    pointer = bank.keys.data_ptr()
    reference: list[list[torch.Tensor]] = [[] for _ in range(groups)]  # oldest first
    generator = torch.Generator().manual_seed(0)
    counter = 0
    # Batch sizes include one larger than size_per_group, so one group overflows within a batch.
    for batch in [3, 5, 1, 9, 2, 7, 4]:
        keys = torch.arange(counter, counter + batch, dtype=torch.float32).view(-1, 1).repeat(1, dim)
        counter += batch
        group_ids = torch.randint(0, groups, (batch,), generator=generator)
        if batch == 9:
            group_ids = torch.tensor([1, 1, 1, 1, 1, 1, 0, 1, 2])  # 7 rows of group 1 > size 4
        bank.enqueue(keys, group_ids)
        for row, group in zip(keys, group_ids.tolist()):
            reference[group].append(row)
            reference[group] = reference[group][-size:]
        for group in range(groups):
            expected = torch.stack(reference[group]) if reference[group] else torch.zeros(0, dim)
            assert torch.equal(_in_age_order(bank, group), expected)
        assert len(bank) == sum(len(r) for r in reference)
    assert bank.keys.data_ptr() == pointer  # never reallocated


def test_groups_are_isolated():
    bank = GroupedQueue(dim=2, size_per_group=3, num_groups=2)
    bank.enqueue(torch.ones(5, 2), torch.zeros(5, dtype=torch.long))
    assert bank.negatives(1).shape == (0, 2)
    bank.enqueue(-torch.ones(2, 2), torch.ones(2, dtype=torch.long))
    assert (bank.negatives(0) == 1).all() and bank.negatives(0).shape == (3, 2)
    assert (bank.negatives(1) == -1).all() and bank.negatives(1).shape == (2, 2)


def test_mask_selects_own_filled_group_slots():
    bank = GroupedQueue(dim=2, size_per_group=3, num_groups=3)
    bank.enqueue(torch.randn(4, 2), torch.tensor([0, 2, 2, 0]))
    mask = bank.negatives_mask(torch.tensor([2, 0, 1]))
    assert mask.tolist() == [
        [False] * 6 + [True, True, False],
        [True, True, False] + [False] * 6,
        [False] * 9,
    ]
    all_keys = bank.all_negatives()
    for row, group in enumerate([2, 0, 1]):
        assert torch.equal(all_keys[mask[row]], bank.negatives(group))


def test_info_nce_with_column_weights_uses_same_group_negatives_only():
    generator = torch.Generator().manual_seed(1)
    dim = 4
    bank = GroupedQueue(dim, size_per_group=5, num_groups=2)
    bank.enqueue(torch.randn(8, dim, generator=generator), torch.tensor([0, 1, 0, 1, 1, 0, 1, 1]))
    query = torch.randn(4, dim, generator=generator, dtype=torch.float64)
    key = torch.randn(4, dim, generator=generator, dtype=torch.float64)
    groups = torch.tensor([0, 1, 1, 0])
    weights = bank.column_weights(groups, groups, dtype=torch.float64)
    got = info_nce(query, key, negatives=bank.all_negatives().double(), temperature=0.1, weights=weights,
                   reduction="none")
    cosine = torch.nn.functional.cosine_similarity
    for i, group in enumerate(groups.tolist()):
        # By hand: only same-group keys and the row's own-group bank entries are in the softmax.
        candidates = torch.cat([key[groups == group], bank.negatives(group).double()])
        assert candidates.shape[0] == int(weights[i].sum())
        logits = torch.stack([cosine(query[i], c, dim=0) / 0.1 for c in candidates])
        expected = torch.logsumexp(logits, dim=0) - cosine(query[i], key[i], dim=0) / 0.1
        torch.testing.assert_close(got[i], expected)


def test_state_dict_round_trip():
    bank = GroupedQueue(dim=3, size_per_group=4, num_groups=2)
    bank.enqueue(torch.randn(6, 3), torch.tensor([0, 1, 1, 1, 1, 1]))
    state = bank.state_dict()
    assert set(state) == {"keys", "ptr", "filled"}
    restored = GroupedQueue(dim=3, size_per_group=4, num_groups=2)
    restored.load_state_dict(state)
    assert torch.equal(restored.keys, bank.keys)
    assert restored.ptr.tolist() == [1, 1] and restored.filled.tolist() == [1, 4]


def test_bad_input():
    bank = GroupedQueue(dim=2, size_per_group=3, num_groups=2)
    with pytest.raises(ValueError, match="groups"):
        bank.enqueue(torch.randn(2, 2), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="groups"):
        bank.enqueue(torch.randn(2, 2), torch.tensor([0]))
    with pytest.raises(ValueError, match="feature size"):
        bank.enqueue(torch.randn(2, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="group"):
        bank.negatives(2)
    with pytest.raises(ValueError, match="positive"):
        GroupedQueue(dim=2, size_per_group=0, num_groups=1)
