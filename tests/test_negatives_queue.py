"""Queue: FIFO order and wrap-around against a Python list, no reallocation, checkpointing."""

import pytest
import torch

from contrastkit.negatives import Queue


def test_fifo_against_list_reference():
    size, dim = 7, 3
    queue = Queue(size, dim)
    pointer = queue.keys.data_ptr()
    reference: list[torch.Tensor] = []  # oldest first
    generator = torch.Generator().manual_seed(0)
    counter = 0
    for batch in [3, 2, 4, 1, 7, 5, 6, 2]:
        keys = torch.arange(counter, counter + batch, dtype=torch.float32).view(-1, 1).repeat(1, dim)
        keys = keys + torch.rand(batch, dim, generator=generator) * 0.01
        counter += batch
        queue.enqueue(keys)
        reference.extend(keys)
        reference = reference[-size:]
        stored = queue.negatives()
        assert stored.shape == (len(reference), dim)
        assert len(queue) == len(reference)
        # Same set of rows; order in storage is FIFO with wrap-around: the
        # oldest row sits at ptr once the queue is full.
        if queue.is_full:
            ptr = int(queue.ptr)
            in_age_order = torch.cat([stored[ptr:], stored[:ptr]])
        else:
            in_age_order = stored
        assert torch.equal(in_age_order, torch.stack(reference))
    assert queue.keys.data_ptr() == pointer  # never reallocated


def test_starts_empty_and_partial_fill():
    queue = Queue(10, 2)
    assert queue.negatives().shape == (0, 2)
    queue.enqueue(torch.ones(4, 2))
    assert queue.negatives().shape == (4, 2)
    assert int(queue.ptr) == 4 and not queue.is_full


def test_detaches_keys():
    queue = Queue(4, 2)
    keys = torch.randn(2, 2, requires_grad=True)
    queue.enqueue(keys * 2)
    assert not queue.negatives().requires_grad
    assert queue.negatives().grad_fn is None


def test_state_dict_round_trip():
    queue = Queue(5, 3)
    queue.enqueue(torch.randn(4, 3))
    queue.enqueue(torch.randn(3, 3))
    state = queue.state_dict()
    assert set(state) == {"keys", "ptr", "filled"}
    restored = Queue(5, 3)
    restored.load_state_dict(state)
    assert torch.equal(restored.negatives(), queue.negatives())
    assert int(restored.ptr) == int(queue.ptr) == 2 and int(restored.filled) == 5
    nxt = torch.randn(2, 3)
    queue.enqueue(nxt)
    restored.enqueue(nxt)
    assert torch.equal(restored.keys, queue.keys)


def test_errors():
    queue = Queue(4, 3)
    with pytest.raises(ValueError, match="D=3"):
        queue.enqueue(torch.randn(2, 5))
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        queue.enqueue(torch.randn(3))
    with pytest.raises(ValueError, match="at least 1 rows"):
        queue.enqueue(torch.randn(0, 3))
    with pytest.raises(ValueError, match="at most size=4"):
        queue.enqueue(torch.randn(5, 3))
    with pytest.raises(ValueError, match="finite"):
        queue.enqueue(torch.tensor([[0.0, float("nan"), 1.0]]))
    with pytest.raises(ValueError, match="floating"):
        queue.enqueue(torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="positive"):
        Queue(0, 3)
    assert len(queue) == 0  # nothing written by the failed calls
