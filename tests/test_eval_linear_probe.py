import pytest
import torch

from contrastkit.eval import fit_logistic_regression, linear_probe_accuracy


def blobs(rows: int, seed: int, dim: int = 16, classes: int = 6, noise: float = 0.3):
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=torch.Generator().manual_seed(100)) * 2
    labels = torch.randint(0, classes, (rows,), generator=generator)
    return centres[labels] + noise * torch.randn(rows, dim, generator=generator), labels


def test_linearly_separable_data_is_learned():
    train, train_labels = blobs(600, seed=0)
    test, test_labels = blobs(300, seed=1)
    result = linear_probe_accuracy(train, train_labels, test, test_labels)
    assert result["linear_top1"] >= 0.99
    assert result["linear_top5"] == 1.0
    assert result["linear_weight_decay"] > 0


def test_random_labels_give_chance():
    generator = torch.Generator().manual_seed(0)
    train, test = torch.randn(1000, 16, generator=generator), torch.randn(1000, 16, generator=generator)
    train_labels = torch.randint(0, 10, (1000,), generator=generator)
    test_labels = torch.randint(0, 10, (1000,), generator=generator)
    result = linear_probe_accuracy(train, train_labels, test, test_labels, weight_decay=1e-4)
    assert 0.05 <= result["linear_top1"] <= 0.16


def test_standardisation_makes_scale_irrelevant():
    train, train_labels = blobs(400, seed=2, noise=1.5)
    test, test_labels = blobs(200, seed=3, noise=1.5)
    scale = torch.logspace(-3, 3, 16)
    plain = linear_probe_accuracy(train, train_labels, test, test_labels, weight_decay=1e-3)
    scaled = linear_probe_accuracy(train * scale, train_labels, test * scale, test_labels, weight_decay=1e-3)
    assert scaled["linear_top1"] == pytest.approx(plain["linear_top1"], abs=0.01)


def test_fit_reaches_stationary_point_of_the_objective():
    train, labels = blobs(300, seed=4, noise=2.0)
    weight, bias = fit_logistic_regression(train, labels, num_classes=6, weight_decay=1e-2, max_iter=300)
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(train @ weight.T + bias, labels) + 1e-2 * weight.pow(2).sum()
    loss.backward()
    assert weight.grad.abs().max() < 1e-3 and bias.grad.abs().max() < 1e-3


def test_deterministic_and_errors():
    train, train_labels = blobs(300, seed=5, noise=2.0)
    test, test_labels = blobs(100, seed=6, noise=2.0)
    first = linear_probe_accuracy(train, train_labels, test, test_labels, seed=3)
    assert first == linear_probe_accuracy(train, train_labels, test, test_labels, seed=3)
    with pytest.raises(ValueError, match="weight decay"):
        linear_probe_accuracy(train, train_labels, test, test_labels, weight_decay=-1.0)
    with pytest.raises(ValueError, match="D=16"):
        linear_probe_accuracy(train, train_labels, test[:, :3], test_labels)
