"""Interaction data: per-user hold-out, BPR triplets, train masks and user log files."""

from __future__ import annotations

import pytest
import torch

from contrastkit.data.interactions import (
    NEGATIVE_RETRIES,
    InteractionData,
    InteractionDataset,
    csr_rows_mask,
    interaction_splits,
    load_interaction_file,
    load_interactions,
    pairs_to_csr,
)
from contrastkit.train.loader import EpochBatches


def _random_pairs(num_users=30, num_items=20, density=0.2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    matrix = torch.rand(num_users, num_items, generator=generator) < density
    matrix[0] = False
    matrix[0, 3] = True  # a user with a single interaction
    return matrix.nonzero().T


def _as_set(pairs):
    return {(int(u), int(i)) for u, i in pairs.T}


def test_split_is_a_per_user_partition_with_the_expected_sizes():
    pairs = _random_pairs()
    duplicated = torch.cat([pairs, pairs[:, :7]], dim=1)
    splits = interaction_splits(duplicated, 30, 20, test_fraction=0.2, seed=3)
    data = splits.test
    train, test = _as_set(data.train_pairs), _as_set(data.test_pairs)
    assert train | test == _as_set(pairs) and not train & test  # duplicates removed, nothing lost
    assert data.train_pairs.shape[1] == len(train) and data.test_pairs.shape[1] == len(test)
    for user in range(30):
        n = sum(1 for u, _ in _as_set(pairs) if u == user)
        held = sum(1 for u, _ in test if u == user)
        expected = 0 if n < 2 else min(max(int(0.2 * n + 0.5), 1), n - 1)
        assert held == expected, (user, n, held)
    assert (0, 3) in train  # a single interaction stays in training
    assert len(data) == len({u for u, _ in test})


def test_split_is_seeded():
    pairs = _random_pairs()
    first = interaction_splits(pairs, 30, 20, seed=1).test
    again = interaction_splits(pairs, 30, 20, seed=1).test
    other = interaction_splits(pairs, 30, 20, seed=2).test
    assert torch.equal(first.test_pairs, again.test_pairs)
    assert not torch.equal(first.test_pairs, other.test_pairs)


def test_splits_metadata_and_zero_test_fraction():
    splits = interaction_splits(_random_pairs(), 30, 20, test_fraction=0.0, name="toy", description="a toy")
    assert splits.modality == "interactions" and splits.num_classes == 0 and splits.input_shape == ()
    assert splits.name == "toy" and splits.description == "a toy"
    assert splits.test.test_pairs.shape == (2, 0) and len(splits.test) == 0
    assert isinstance(splits.train, InteractionDataset) and isinstance(splits.test, InteractionData)


def test_triplets_hold_the_training_pairs_and_negatives_off_them():
    splits = interaction_splits(_random_pairs(), 30, 20, seed=0)
    dataset = splits.train
    assert len(dataset) == splits.test.train_pairs.shape[1]
    torch.manual_seed(0)
    indices = list(range(len(dataset)))[::-1]
    batch = dataset.__getitems__(indices)
    assert batch.inputs.shape == (len(dataset), 3) and batch.inputs.dtype == torch.long
    assert torch.equal(batch.index, torch.tensor(indices))
    assert torch.equal(batch.inputs[:, :2].T, dataset.pairs[:, indices])
    train = _as_set(dataset.pairs)
    assert all((int(u), int(n)) not in train for u, _, n in batch.inputs)  # 20 % dense: retries suffice
    assert int(batch.inputs[:, 2].min()) >= 0 and int(batch.inputs[:, 2].max()) < 20
    torch.manual_seed(0)
    assert torch.equal(dataset.__getitems__(indices).inputs, batch.inputs)  # the global RNG decides
    single = dataset[2]
    assert single.inputs.shape == (3,) and int(single.index) == 2


def test_negatives_are_uniform_over_the_unobserved_items():
    # One user who saw items 0 and 1 of 4: negatives must be 2 or 3, each about half the time.
    no_test = torch.zeros(2, 0, dtype=torch.long)
    dataset = InteractionDataset(InteractionData(1, 4, torch.tensor([[0, 0], [0, 1]]), no_test))
    torch.manual_seed(0)
    negatives = dataset.sample_negatives(torch.zeros(4000, dtype=torch.long))
    counts = torch.bincount(negatives, minlength=4)
    assert counts[0] + counts[1] <= 4000 * 0.5**NEGATIVE_RETRIES * 10  # practically never a positive
    assert abs(int(counts[2]) - 2000) < 200 and abs(int(counts[3]) - 2000) < 200


def test_dataset_works_with_the_trainer_batches():
    splits = interaction_splits(_random_pairs(), 30, 20, seed=0)
    batches = EpochBatches(splits.train, batch_size=8, seed=0)
    batch = batches.batch(0)
    assert batch.inputs.shape == (8, 3)


def test_train_mask_and_csr_match_a_loop():
    data = interaction_splits(_random_pairs(), 30, 20, seed=0).test
    users = torch.tensor([5, 0, 29, 5])
    mask = data.train_mask(users)
    for row, user in enumerate(users.tolist()):
        for item in range(20):
            assert bool(mask[row, item]) == ((user, item) in _as_set(data.train_pairs))
    dense = data.train_matrix().to_dense()
    assert dense.shape == (30, 20) and torch.equal(dense.bool(), data.train_mask(torch.arange(30)))
    pointer, columns = pairs_to_csr(torch.tensor([[2, 0, 2], [1, 4, 3]]), 3)
    assert pointer.tolist() == [0, 1, 1, 3] and columns.tolist() == [4, 1, 3]
    assert csr_rows_mask(pointer, columns, torch.tensor([1]), 5).sum() == 0


def test_subset_users_keeps_whole_users():
    data = interaction_splits(_random_pairs(), 30, 20, seed=0).test
    subset = data.subset_users(5, seed=0)
    assert len(subset) == 5 and torch.equal(subset.train_pairs, data.train_pairs)
    kept = set(subset.test_users.tolist())
    assert subset.test_pairs.shape[1] == sum(1 for u, _ in _as_set(data.test_pairs) if u in kept)
    assert data.subset_users(None) is data and data.subset_users(1000) is data


@pytest.mark.parametrize(
    "pairs, message",
    [
        (torch.tensor([[0, 1, 2]]), "shape \\[2, T\\]"),
        (torch.tensor([[0.0], [1.0]]), "integer"),
        (torch.tensor([[0, 5], [0, 1]]), "user ids < num_users=3"),
        (torch.tensor([[0, 1], [0, 9]]), "item ids < num_items=4"),
        (torch.tensor([[-1], [0]]), "non-negative"),
        (torch.zeros(2, 0, dtype=torch.long), "at least one"),
    ],
)
def test_bad_pairs_raise(pairs, message):
    with pytest.raises(ValueError, match=message):
        interaction_splits(pairs, 3, 4)


def test_bad_test_fraction_raises():
    with pytest.raises(ValueError, match="test_fraction"):
        interaction_splits(torch.tensor([[0], [0]]), 1, 1, test_fraction=1.0)


def test_load_csv_with_header_and_numeric_names(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,rating\n10,b,5\n2,a,3\n\n# a comment\n10,a,1\n2,b,4\n9,c,2\n", encoding="utf-8")
    log = load_interaction_file(path)
    assert log.user_names == ["2", "9", "10"]  # numeric order, not string order
    assert log.item_names == ["a", "b", "c"]
    assert log.pairs.tolist() == [[2, 0, 2, 0, 1], [1, 0, 0, 1, 2]]
    assert (log.num_users, log.num_items) == (3, 3)


def test_load_tsv_and_whitespace_without_header(tmp_path):
    tsv = tmp_path / "log.tsv"
    tsv.write_text("bob\tx\nalice\ty\nbob\ty\n", encoding="utf-8")
    log = load_interaction_file(tsv)
    assert log.user_names == ["alice", "bob"] and log.pairs.tolist() == [[1, 0, 1], [0, 1, 1]]
    text = tmp_path / "log.txt"
    text.write_text("user item\n1 7\n1   8\n3 7 1234567\n", encoding="utf-8")
    log = load_interaction_file(text)
    assert log.user_names == ["1", "3"] and log.item_names == ["7", "8"] and log.pairs.shape == (2, 3)


def test_header_guess_from_types_and_explicit_header(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("who,what\n1,2\n3,4\n", encoding="utf-8")
    assert load_interaction_file(path).pairs.shape == (2, 2)  # non-numeric first row over numeric rows
    assert load_interaction_file(path, header=False).pairs.shape == (2, 3)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_interaction_file(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2\n3\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.csv:2: expected at least 2"):
        load_interaction_file(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("# nothing\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty interaction log"):
        load_interaction_file(empty)
    only_header = tmp_path / "header.csv"
    only_header.write_text("user,item\n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty interaction log"):
        load_interaction_file(only_header)


def test_load_interactions_end_to_end(tmp_path):
    rows = [f"u{u},i{(u * 7 + k) % 11}" for u in range(12) for k in range(5)]
    (tmp_path / "log.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    splits = load_interactions("log.csv", data_dir=tmp_path, test_fraction=0.2, seed=0)
    data = splits.test
    assert data.num_users == 12 and data.num_items == 11
    assert data.user_names is not None and data.user_names[0] == "u0"
    assert len(data) == 12 and data.test_pairs.shape[1] == 12  # one of five items each
    assert splits.name == "interactions:log.csv"
