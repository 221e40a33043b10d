import math

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs, make_classification
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.svm import SVC

from contrastkit.eval import svm_probe
from contrastkit.eval.svm import SVM_C_GRID, SVM_MAX_ITER


def as_tensors(features: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(features).float(), torch.from_numpy(labels).long()


def blobs(rows: int, seed: int, classes: int = 4, spread: float = 0.5):
    features, labels = make_blobs(rows, n_features=8, centers=classes, cluster_std=spread, random_state=seed, center_box=(-10, 10))
    return features, labels


def test_separable_features_are_classified_perfectly():
    # One draw split in two, so train and test share the blob centres.
    features, labels = blobs(400, seed=0)
    result = svm_probe(*as_tensors(features[:200], labels[:200]), *as_tensors(features[200:], labels[200:]))
    assert result["svm_accuracy"] == 1.0
    assert result["svm_train_rows"] == 200
    assert result["svm_C"] in SVM_C_GRID


def test_random_labels_give_chance():
    generator = torch.Generator().manual_seed(0)
    train, test = torch.randn(300, 8, generator=generator), torch.randn(300, 8, generator=generator)
    train_labels = torch.randint(0, 4, (300,), generator=generator)
    test_labels = torch.randint(0, 4, (300,), generator=generator)
    result = svm_probe(train, train_labels, test, test_labels)
    assert 0.15 <= result["svm_accuracy"] <= 0.36


def test_equals_a_direct_sklearn_fit_at_the_chosen_penalty():
    # Overlapping classes, so the choice of C matters (a separable set would tie at many C).
    features, labels = make_classification(
        300, n_features=10, n_informative=4, n_classes=3, flip_y=0.1, class_sep=0.8, random_state=1
    )
    train, test = features[:200], features[200:]
    result = svm_probe(*as_tensors(train, labels[:200]), *as_tensors(test, labels[200:]))
    # The reference sees the float32-rounded features the probe saw.
    train32, test32 = train.astype(np.float32).astype(np.float64), test.astype(np.float32).astype(np.float64)
    search = GridSearchCV(SVC(gamma="scale", max_iter=SVM_MAX_ITER), {"C": list(SVM_C_GRID)}, cv=5).fit(train32, labels[:200])
    assert result["svm_C"] == float(search.best_params_["C"])
    direct = SVC(C=result["svm_C"], gamma="scale").fit(train32, labels[:200])
    assert result["svm_accuracy"] == pytest.approx(direct.score(test32, labels[200:]), abs=1e-12)
    assert 0.4 < result["svm_accuracy"] < 1.0  # informative, not trivial: the check above could fail


def test_tiny_training_set_uses_a_single_hard_margin_fit():
    # 3 classes x 4 rows: fewer than 5 rows per class, too few to cross-validate.
    features, labels = blobs(60, seed=2, classes=3, spread=3.0)
    train_rows = np.concatenate([np.flatnonzero(labels == c)[:4] for c in range(3)])
    train, train_labels = features[train_rows], labels[train_rows]
    result = svm_probe(*as_tensors(train, train_labels), *as_tensors(features, labels))
    assert result["svm_C"] == math.inf
    assert result["svm_train_rows"] == 12
    direct = SVC(C=np.inf, gamma="scale").fit(train.astype(np.float32).astype(np.float64), train_labels)
    assert result["svm_accuracy"] == pytest.approx(direct.score(features.astype(np.float32), labels), abs=1e-12)


def test_a_class_with_one_row_falls_back_to_the_hard_margin_fit():
    features, labels = blobs(120, seed=3, classes=3)
    labels[labels == 2] = 0
    labels[0] = 2  # class 2 now has one row: no stratified split can validate on it
    result = svm_probe(*as_tensors(features, labels), *as_tensors(features, labels))
    assert result["svm_C"] == math.inf
    assert result["svm_train_rows"] == 120


def test_large_training_sets_are_subsampled_like_ts2vec():
    # Overlapping blobs, so that which rows are drawn changes the chosen C.
    features, labels = blobs(700, seed=4, classes=5, spread=5.0)
    result = svm_probe(*as_tensors(features, labels), *as_tensors(features, labels), max_train=150, seed=0)
    assert result["svm_train_rows"] == 150
    # TS2Vec's draw: train_test_split(train_size=MAX_SAMPLES, random_state=0, stratify=y), then cv=5.
    sub_x, _, sub_y, _ = train_test_split(
        features.astype(np.float32).astype(np.float64), labels, train_size=150, random_state=0, stratify=labels
    )
    assert np.bincount(sub_y).tolist() == [30] * 5
    search = GridSearchCV(SVC(gamma="scale", max_iter=SVM_MAX_ITER), {"C": list(SVM_C_GRID)}, cv=StratifiedKFold(5))
    search.fit(sub_x, sub_y)
    assert result["svm_C"] == float(search.best_params_["C"])
    assert result["svm_accuracy"] == pytest.approx(search.score(features.astype(np.float32), labels), abs=1e-12)
    other_seed = svm_probe(*as_tensors(features, labels), *as_tensors(features, labels), max_train=150, seed=1)
    assert other_seed["svm_train_rows"] == 150
    assert (other_seed["svm_C"], other_seed["svm_accuracy"]) != (result["svm_C"], result["svm_accuracy"])


def test_same_seed_same_result():
    features, labels = blobs(300, seed=5, classes=3, spread=3.0)
    args = (*as_tensors(features, labels), *as_tensors(features, labels))
    assert svm_probe(*args, max_train=100, seed=7) == svm_probe(*args, max_train=100, seed=7)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((torch.randn(10), torch.zeros(10).long(), torch.randn(4, 3), torch.zeros(4).long()), r"train_features: expected shape \[N, D\]"),
        ((torch.randn(10, 3), torch.zeros(10).long(), torch.randn(4, 5), torch.zeros(4).long()), "feature size D=3"),
        ((torch.full((10, 3), float("nan")), torch.zeros(10).long(), torch.randn(4, 3), torch.zeros(4).long()), "NaN"),
        ((torch.randn(10, 3), torch.zeros(9).long(), torch.randn(4, 3), torch.zeros(4).long()), r"train_labels: expected integer labels of shape \[10\]"),
        ((torch.randn(10, 3), torch.zeros(10), torch.randn(4, 3), torch.zeros(4).long()), "expected integer labels, got dtype"),
        ((torch.randn(10, 3), torch.arange(10) % 2, torch.randn(4, 3), torch.zeros(3).long()), "test_labels"),
        ((torch.randn(10, 3), torch.zeros(10).long(), torch.randn(4, 3), torch.zeros(4).long()), "at least 2 classes"),
    ],
)
def test_bad_input_raises_a_clear_error(arguments, message):
    with pytest.raises(ValueError, match=message):
        svm_probe(*arguments)


def test_bad_max_train_raises():
    features, labels = torch.randn(10, 3), torch.arange(10) % 2
    with pytest.raises(ValueError, match="max_train >= 2"):
        svm_probe(features, labels, features, labels, max_train=1)
