"""Label-fraction protocol: stratified, nested, seeded subsets; probe results against linear_probe_accuracy."""

import statistics

import pytest
import torch

from contrastkit.eval.label_fractions import (
    label_fraction_probe,
    stratified_label_subset,
)
from contrastkit.eval.linear_probe import linear_probe_accuracy

# Imbalanced classes, one of them with a single row.
COUNTS = [300, 120, 45, 9, 1]


def _labels(seed: int = 0) -> torch.Tensor:
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(COUNTS)])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]


def _features(labels: torch.Tensor, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(len(COUNTS), 6, generator=generator) * 1.5
    return centres[labels] + torch.randn(len(labels), 6, generator=generator)


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.25, 0.5, 1.0])
def test_subsets_are_stratified_with_at_least_one_row_per_class(fraction):
    labels = _labels()
    subset = stratified_label_subset(labels, fraction, seed=3)
    assert subset.dtype == torch.int64
    assert torch.equal(subset, subset.sort().values) and len(set(subset.tolist())) == len(subset)
    for c, n in enumerate(COUNTS):
        expected = min(n, max(1, round(fraction * n)))
        assert int((labels[subset] == c).sum()) == expected, (c, fraction)
    if fraction == 1.0:
        assert torch.equal(subset, torch.arange(len(labels)))


def test_subsets_are_nested_within_a_seed_and_differ_across_seeds():
    labels = _labels()
    previous: set[int] = set()
    for fraction in (0.01, 0.1, 0.25, 0.5, 1.0):
        current = set(stratified_label_subset(labels, fraction, seed=5).tolist())
        assert previous <= current
        previous = current
    assert torch.equal(stratified_label_subset(labels, 0.1, seed=5), stratified_label_subset(labels, 0.1, seed=5))
    assert not torch.equal(stratified_label_subset(labels, 0.1, seed=5), stratified_label_subset(labels, 0.1, seed=6))


def test_subset_rejects_bad_fractions_and_labels():
    with pytest.raises(ValueError, match="fraction"):
        stratified_label_subset(_labels(), 0.0)
    with pytest.raises(ValueError, match="fraction"):
        stratified_label_subset(_labels(), 1.5)
    with pytest.raises(ValueError, match="integer labels"):
        stratified_label_subset(torch.rand(5), 0.5)


def test_probe_matches_linear_probe_on_the_same_subsets():
    labels = _labels()
    features = _features(labels, 0)
    test_labels = _labels(1)[:200]
    test_features = _features(test_labels, 0)
    options = dict(weight_decay=(1e-4, 1e-2), max_iter=50)
    results = label_fraction_probe(
        features, labels, test_features, test_labels, fractions=(0.1, 1.0), repeats=3, seed=4, **options
    )
    assert list(results) == [0.1, 1.0]

    # Fraction 1: one fit on every label, identical to the plain linear probe.
    full = results[1.0]
    expected = linear_probe_accuracy(features, labels, test_features, test_labels, num_classes=5, seed=4, **options)
    assert full.accuracies == (expected["linear_top1"],) and full.std == 0.0 and full.rows == len(labels)
    assert full.mean == expected["linear_top1"]

    # Fraction 0.1: repeat r is the probe on the seed 4 + r subset; mean and sample std over repeats.
    tenth = results[0.1]
    reference = []
    for repeat in range(3):
        rows = stratified_label_subset(labels, 0.1, seed=4 + repeat)
        reference.append(linear_probe_accuracy(
            features[rows], labels[rows], test_features, test_labels, num_classes=5, seed=4, **options
        )["linear_top1"])  # fmt: skip
    assert tenth.accuracies == tuple(reference)
    assert tenth.rows == sum(min(n, max(1, round(0.1 * n))) for n in COUNTS)
    assert tenth.mean == pytest.approx(statistics.mean(reference))
    assert tenth.std == pytest.approx(statistics.stdev(reference))
    assert 0.0 <= tenth.mean <= 1.0 and full.mean > 0.5


def test_probe_rejects_bad_arguments():
    labels = _labels()
    features = _features(labels, 0)
    with pytest.raises(ValueError, match="repeats"):
        label_fraction_probe(features, labels, features, labels, repeats=0)
    with pytest.raises(ValueError, match="fractions"):
        label_fraction_probe(features, labels, features, labels, fractions=(0.0, 1.0))
