import pytest
import torch
from torch.utils.data import DataLoader

from contrastkit.data import ArrayDataset, Batch, collate_batches


def make_dataset(labelled: bool = True) -> ArrayDataset:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.rand(23, 2, 4, 5, generator=generator)
    labels = torch.randint(0, 4, (23,), generator=generator) if labelled else None
    return ArrayDataset(inputs, labels)


@pytest.mark.parametrize("labelled", [True, False])
def test_getitems_equals_stacked_getitem(labelled):
    dataset = make_dataset(labelled)
    indices = [5, 0, 22, 5, 13, -1]
    batched = dataset.__getitems__(indices)
    singles = [dataset[i] for i in indices]
    assert torch.equal(batched.inputs, torch.stack([s.inputs for s in singles]))
    assert torch.equal(batched.index, torch.tensor([5, 0, 22, 5, 13, 22]))
    assert torch.equal(batched.index, torch.stack([s.index for s in singles]))
    if labelled:
        assert torch.equal(batched.labels, torch.stack([s.labels for s in singles]))
    else:
        assert batched.labels is None and all(s.labels is None for s in singles)
    assert torch.equal(collate_batches(singles).inputs, batched.inputs)


def test_dataloader_uses_batched_fetch_and_covers_every_row():
    dataset = make_dataset()
    loader = DataLoader(dataset, batch_size=8, shuffle=True, collate_fn=collate_batches,
                        generator=torch.Generator().manual_seed(1))
    batches = list(loader)
    assert all(isinstance(batch, Batch) for batch in batches)
    assert [len(batch) for batch in batches] == [8, 8, 7]
    seen = torch.cat([batch.index for batch in batches])
    assert sorted(seen.tolist()) == list(range(23))
    for batch in batches:
        assert torch.equal(batch.inputs, dataset.inputs[batch.index])
        assert torch.equal(batch.labels, dataset.labels[batch.index])


def test_properties_and_errors():
    dataset = make_dataset()
    assert dataset.input_shape == (2, 4, 5)
    assert dataset.num_classes == int(dataset.labels.max()) + 1
    assert make_dataset(False).num_classes == 0
    with pytest.raises(IndexError):
        dataset[23]
    with pytest.raises(IndexError):
        dataset.__getitems__([0, 23])
    with pytest.raises(ValueError, match="same length"):
        ArrayDataset(torch.zeros(3, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="integer labels"):
        ArrayDataset(torch.zeros(3, 2), torch.zeros(3))
