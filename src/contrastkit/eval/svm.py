"""RBF support-vector probe on frozen features (the TS2Vec classification protocol).

Yue et al., "TS2Vec: Towards Universal Representation of Time Series", AAAI 2022,
score a representation by an SVM with a radial basis function kernel trained on the
frozen training-split features (``fit_svm`` in ``tasks/_eval_protocols.py`` of their code):

- ``SVC(gamma="scale")``, i.e. ``gamma = 1 / (D * Var(X))`` over all training entries;
  features are used as they come (no standardisation).
- When the training set is tiny — fewer than 5 rows per class on average
  (``N // num_classes < 5``) or fewer than 50 rows — a single hard-margin fit,
  ``C = inf``, since there is too little data to cross-validate on.
- Otherwise ``C`` is chosen from ``1e-4, 1e-3, ..., 1e4, inf`` by 5-fold stratified
  cross-validated accuracy (unshuffled folds; ties keep the smaller ``C``), with
  ``max_iter=10_000_000``, and the best ``C`` is refit on all the rows searched on.
  Training sets larger than ``max_train`` rows are first reduced to a seeded,
  class-stratified subsample of ``max_train`` rows (TS2Vec: 10000).

Two departures keep it sound where TS2Vec's code only warns: the folds are
``min(5, smallest class count)`` (with ``cv=5``, a class of fewer than 5 rows is missing
from some validation folds), and with fewer than 2 rows in some class the single
``C = inf`` fit is used instead of a search. The single fit is capped at the same ``max_iter`` as the
search (TS2Vec leaves it unbounded), so conflicting duplicate rows, which make the
hard-margin problem infeasible, end in a ``ConvergenceWarning`` rather than a hang.
With ``seed=0`` and at least 5 rows of every class searched on, the result equals TS2Vec's.

Accuracies are fractions in ``[0, 1]`` (not percentages), like everywhere in ``eval/``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from contrastkit.data.splits import subset_indices
from contrastkit.utils.checks import check_embeddings, check_labels

#: The candidate penalties of the cross-validated search (TS2Vec's grid; ``inf`` is a hard margin).
SVM_C_GRID: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0, 10000.0, math.inf)

#: The iteration cap of libsvm in every fit (TS2Vec's value in its search).
SVM_MAX_ITER: int = 10_000_000

#: The largest number of folds of the cross-validated search.
SVM_FOLDS: int = 5


def svm_probe(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    seed: int = 0,
    max_train: int = 10000,
    n_jobs: int = 1,
) -> dict[str, float | int]:
    """Test accuracy of an RBF SVM trained on frozen features, with ``C`` chosen by TS2Vec's protocol.

    Args:
        train_features: ``[N, D]`` features of the training split (at least 2 classes).
        train_labels: ``[N]`` integer labels.
        test_features: ``[M, D]`` features of the test split.
        test_labels: ``[M]`` integer labels (classes absent from training count as errors).
        seed: the seed of the stratified subsample taken when ``N > max_train``
            (``seed=0`` draws TS2Vec's subsample).
        max_train: the most training rows the search and the final fit see (TS2Vec: 10000).
        n_jobs: parallel jobs of the cross-validated search (``-1``: all cores).

    Returns:
        ``{"svm_accuracy": float, "svm_C": float, "svm_train_rows": int}``: the test accuracy
        as a fraction in ``[0, 1]``, the penalty of the final fit (``float("inf")`` for a hard
        margin) and the number of training rows it was fit on.

    Example:
        >>> features = torch.randn(200, 8); labels = (features[:, 0] > 0).long()
        >>> svm_probe(features, labels, features, labels)["svm_accuracy"] > 0.95
        True
    """
    # sklearn's classes are imported here: loading them costs about a second, and only this probe needs them.
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.svm import SVC

    check_embeddings("train_features", train_features, min_rows=2)
    check_embeddings("test_features", test_features, dim=train_features.shape[1])
    train_labels = check_labels("train_labels", train_labels, train_features.shape[0], non_negative=True)
    test_labels = check_labels("test_labels", test_labels, test_features.shape[0], non_negative=True)
    if int(max_train) < 2:
        raise ValueError(f"svm_probe: expected max_train >= 2, got {max_train}")

    # float64 is what libsvm computes in; converting here keeps gamma="scale" identical to sklearn's own fit.
    features = train_features.detach().cpu().double().numpy()
    labels = train_labels.cpu().numpy()
    counts = np.bincount(labels)
    num_classes = int((counts > 0).sum())  # classes present, as np.unique counts them in TS2Vec
    if num_classes < 2:
        raise ValueError(f"svm_probe: expected train_labels with at least 2 classes, got only class {int(labels[0])}")
    train_size = features.shape[0]

    chosen_c = math.inf
    if train_size // num_classes < 5 or train_size < 50:
        model = SVC(C=math.inf, gamma="scale", max_iter=SVM_MAX_ITER).fit(features, labels)
    else:
        if train_size > int(max_train):
            rows = _stratified_subsample(labels, counts, int(max_train), seed=seed)
            features, labels = features[rows], labels[rows]
        fit_counts = np.bincount(labels)
        smallest_class = int(fit_counts[fit_counts > 0].min())
        folds = min(SVM_FOLDS, smallest_class)
        if folds < 2:
            # A class with a single row cannot appear on both sides of any split: nothing to validate on.
            model = SVC(C=math.inf, gamma="scale", max_iter=SVM_MAX_ITER).fit(features, labels)
        else:
            search = GridSearchCV(
                SVC(gamma="scale", max_iter=SVM_MAX_ITER),
                {"C": list(SVM_C_GRID)},
                cv=StratifiedKFold(n_splits=folds),  # unshuffled, as GridSearchCV(cv=5) builds it for a classifier
                n_jobs=n_jobs,
            )
            search.fit(features, labels)
            model = search.best_estimator_
            chosen_c = float(search.best_params_["C"])

    predicted = model.predict(test_features.detach().cpu().double().numpy())
    accuracy = float((predicted == test_labels.cpu().numpy()).mean())
    return {"svm_accuracy": accuracy, "svm_C": float(chosen_c), "svm_train_rows": int(features.shape[0])}


def _stratified_subsample(labels: np.ndarray, counts: np.ndarray, size: int, *, seed: int) -> np.ndarray:
    """Row indices of a seeded, class-stratified subsample of ``size`` rows.

    sklearn's ``train_test_split(stratify=...)`` is TS2Vec's draw (``random_state=0``), so it is
    used whenever it can be: it needs 2 rows in every class and room for every class on both sides.
    Its order is kept, because the unshuffled folds of the search depend on the row order.
    Otherwise contrastkit's own stratified subset (which has no such limits) is drawn.
    """
    from sklearn.model_selection import train_test_split

    num_classes = int((counts > 0).sum())
    rows = np.arange(labels.shape[0])
    if counts[counts > 0].min() >= 2 and size >= num_classes and labels.shape[0] - size >= num_classes:
        return train_test_split(rows, train_size=size, random_state=seed, stratify=labels)[0]
    return subset_indices(labels.shape[0], size, labels, seed=seed)


__all__ = ["SVM_C_GRID", "SVM_MAX_ITER", "svm_probe"]
