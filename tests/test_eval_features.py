import pytest
import torch

from contrastkit.data import ArrayDataset
from contrastkit.eval import extract_features


def test_extracts_in_order_without_grad():
    inputs = torch.randn(25, 1, 3, 3)
    labels = torch.arange(25) % 3
    layer = torch.nn.Linear(9, 4)
    calls = []

    def embed(x):
        calls.append(x.shape[0])
        assert not torch.is_grad_enabled()
        return layer(x.flatten(1))

    features, got_labels = extract_features(embed, ArrayDataset(inputs, labels), batch_size=10)
    assert calls == [10, 10, 5]
    assert features.shape == (25, 4) and features.dtype == torch.float32 and not features.requires_grad
    assert torch.allclose(features, layer(inputs.flatten(1)).detach())
    assert torch.equal(got_labels, labels)
    _, none = extract_features(lambda x: x.flatten(1), ArrayDataset(inputs), batch_size=7)
    assert none is None


def test_non_finite_and_bad_shape_raise():
    dataset = ArrayDataset(torch.randn(7, 2), torch.zeros(7, dtype=torch.long))

    def broken(x):
        out = x.clone()
        if out.shape[0] < 4:  # only the last batch: rows 4..6 (7 rows in batches of 4)
            out[1, 0] = float("nan")
        return out

    with pytest.raises(ValueError, match="non-finite.*7 row.*row 0"):
        extract_features(lambda x: x / (x[:, :1] * 0), dataset, batch_size=8)
    with pytest.raises(ValueError, match="non-finite.*row 5"):
        extract_features(broken, dataset, batch_size=4)
    with pytest.raises(ValueError, match=r"\[B, D\]"):
        extract_features(lambda x: x[:, :, None], dataset)
