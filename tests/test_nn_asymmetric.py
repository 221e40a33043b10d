"""AsymmetricProjection: the key branch is row-independent, the query branch is not (train mode)."""

import pytest
import torch

from contrastkit.nn.asymmetric import AsymmetricProjection


def _batches(seed=0):
    generator = torch.Generator().manual_seed(seed)
    batch = torch.randn(8, 6, generator=generator)
    other = batch.clone()
    other[1:] = torch.randn(7, 6, generator=generator) * 3 + 1  # same row 0, different companions
    return batch, other


def test_key_branch_does_not_depend_on_other_rows():
    torch.manual_seed(0)
    head = AsymmetricProjection(6, 4, hidden_dim=10).train()
    batch, other = _batches()
    keys = head(batch, branch="key")
    assert torch.allclose(keys[0], head(other, branch="key")[0], atol=0, rtol=0)
    assert torch.allclose(keys[0], head(batch[:1], branch="key")[0], atol=1e-6)  # alone in its batch
    queries = head(batch, branch="query")
    assert not torch.allclose(queries[0], head(other, branch="query")[0], atol=1e-3)


def test_key_branch_leaves_batch_statistics_alone():
    torch.manual_seed(0)
    head = AsymmetricProjection(6, 4).train()
    before = head.batch_norm.running_mean.clone()
    head(torch.randn(8, 6), branch="key")
    assert torch.equal(head.batch_norm.running_mean, before)
    head(torch.randn(8, 6), branch="query")
    assert not torch.equal(head.batch_norm.running_mean, before)


def test_branches_share_weights_and_eval_mode_is_row_independent():
    torch.manual_seed(0)
    head = AsymmetricProjection(6, 4)
    batch, other = _batches(1)
    for _ in range(3):
        head(torch.randn(16, 6), branch="query")  # collect running statistics
    head.eval()
    assert torch.allclose(head(batch, branch="query")[0], head(other, branch="query")[0], atol=1e-6)
    # Gradients of both branches reach the same parameters.
    head.train()
    (head(batch, branch="query").sum() + head(batch, branch="key").sum()).backward()
    assert head.hidden.weight.grad is not None and head.output.weight.grad is not None
    assert head(batch, branch="key").shape == (8, 4)


def test_bad_input():
    head = AsymmetricProjection(6, 4)
    with pytest.raises(ValueError, match="branch"):
        head(torch.randn(4, 6), branch="value")
    with pytest.raises(ValueError, match="shape"):
        head(torch.randn(4, 5), branch="key")
    with pytest.raises(ValueError, match="positive sizes"):
        AsymmetricProjection(0, 4)
