"""Linear probe: multinomial logistic regression on frozen features.

Features are standardised with the training split's mean and standard deviation, and
a linear classifier ``softmax(W x + b)`` is fit full-batch with L-BFGS on

    mean cross-entropy + weight_decay * ||W||^2

(the bias is not penalised). Full-batch L-BFGS on 60000 x 128 features takes a few
seconds on two CPU cores, with no learning rate to tune. When several weight decays
are given, each is fit on 80% of a seeded, class-stratified subset of at most 10000
training rows and scored on the other 20%; the best is refit on all training rows,
scaled by ``fit rows / all rows`` (a fixed Gaussian prior on ``W`` is a constant penalty
on the summed loss, so on the mean loss it shrinks as 1 / rows).

Accuracies are fractions in ``[0, 1]`` (not percentages), like everywhere in ``eval/``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from contrastkit.data.splits import split_indices, subset_indices
from contrastkit.eval.knn import accuracy_from_scores
from contrastkit.utils.checks import check_embeddings, check_labels

#: The weight decays compared on the hold-out split by default.
DEFAULT_WEIGHT_DECAYS: tuple[float, ...] = (1e-5, 1e-4, 1e-3)


def fit_logistic_regression(
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_classes: int,
    weight_decay: float = 1e-4,
    max_iter: int = 100,
    tolerance: float = 1e-6,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit a multinomial logistic regression with full-batch L-BFGS (strong Wolfe line search).

    Args:
        features: ``[N, D]`` float features (already standardised).
        labels: ``[N]`` integer labels in ``[0, num_classes)``.
        num_classes: the number of classes ``C``.
        weight_decay: the L2 penalty on the weights (the objective is mean cross-entropy
            plus ``weight_decay * ||W||^2``).
        max_iter: the largest number of L-BFGS iterations.
        tolerance: stop when the largest gradient entry falls below this.

    Returns:
        ``(weight [C, D], bias [C])``, detached.
    """
    features = features.detach().float()
    labels = labels.long()
    num_rows = features.shape[0]
    one_hot = F.one_hot(labels, num_classes).to(features.dtype)
    weight = torch.zeros(num_classes, features.shape[1], dtype=features.dtype)
    bias = torch.zeros(num_classes, dtype=features.dtype)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=int(max_iter),
        history_size=20,
        tolerance_grad=tolerance,
        tolerance_change=1e-9,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        # The loss and its gradient in closed form (softmax - one_hot), cheaper than autograd.
        logits = torch.addmm(bias, features, weight.T)
        row_max = logits.max(dim=1, keepdim=True).values
        probabilities = (logits - row_max).exp_()
        normaliser = probabilities.sum(dim=1, keepdim=True)
        log_partition = normaliser.log() + row_max
        loss = (log_partition.sum() - (logits * one_hot).sum()) / num_rows + weight_decay * weight.pow(2).sum()
        probabilities /= normaliser
        probabilities -= one_hot
        probabilities /= num_rows
        weight.grad = probabilities.T @ features + (2.0 * weight_decay) * weight
        bias.grad = probabilities.sum(dim=0)
        return loss

    with torch.no_grad():
        optimizer.step(closure)
    return weight, bias


def linear_probe_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    weight_decay: float | Sequence[float] = DEFAULT_WEIGHT_DECAYS,
    max_iter: int = 100,
    num_classes: int | None = None,
    holdout_fraction: float = 0.2,
    selection_rows: int = 10000,
    seed: int = 0,
) -> dict[str, float]:
    """Test accuracy of a logistic-regression probe trained on frozen, standardised features.

    Args:
        train_features: ``[N, D]`` features of the training split.
        train_labels: ``[N]`` integer labels.
        test_features: ``[M, D]`` features of the test split.
        test_labels: ``[M]`` integer labels.
        weight_decay: one L2 penalty, or several to choose from on a held-out part of the
            training rows (default ``(1e-5, 1e-4, 1e-3)``).
        max_iter: the largest number of L-BFGS iterations per fit.
        num_classes: the number of classes; default ``max(label) + 1`` over both splits.
        holdout_fraction: the share of the selection rows held out to score each weight decay.
        selection_rows: the weight decay is chosen on a seeded, class-stratified subset of at
            most this many training rows (keeps the choice cheap); the final fit uses all rows.
        seed: the hold-out split's seed.

    Returns:
        ``{"linear_top1": float, "linear_weight_decay": float}`` (the penalty of the final fit) plus ``"linear_top5"`` when
        there are at least 5 classes; accuracies are fractions in ``[0, 1]``.

    Example:
        >>> features = torch.randn(500, 8); labels = (features[:, 0] > 0).long()
        >>> linear_probe_accuracy(features, labels, features, labels)["linear_top1"] > 0.95
        True
    """
    check_embeddings("train_features", train_features, min_rows=2)
    check_embeddings("test_features", test_features, dim=train_features.shape[1])
    train_labels = check_labels("train_labels", train_labels, train_features.shape[0], non_negative=True).cpu()
    test_labels = check_labels("test_labels", test_labels, test_features.shape[0], non_negative=True).cpu()
    if num_classes is None:
        num_classes = max(int(train_labels.max()), int(test_labels.max())) + 1
    if int(train_labels.max()) >= num_classes:
        raise ValueError(f"linear_probe: train labels go up to {int(train_labels.max())} but num_classes is {num_classes}")
    candidates = [float(weight_decay)] if isinstance(weight_decay, (int, float)) else [float(w) for w in weight_decay]
    if not candidates or min(candidates) < 0:
        raise ValueError(f"linear_probe: expected one or more weight decays >= 0, got {weight_decay}")

    train = train_features.detach().float().cpu()
    test = test_features.detach().float().cpu()
    mean = train.mean(dim=0)
    std = train.std(dim=0).clamp_min(1e-6)
    train = (train - mean) / std
    test = (test - mean) / std

    chosen = candidates[0]
    if len(candidates) > 1:
        chosen, fit_rows = _select_weight_decay(
            train, train_labels, candidates,
            num_classes=num_classes, max_iter=max_iter, holdout_fraction=holdout_fraction,
            selection_rows=selection_rows, seed=seed,
        )  # fmt: skip
        # A fixed prior on W is a penalty on the summed loss; on the mean loss it scales as 1 / rows.
        chosen = chosen * fit_rows / train.shape[0]
    weight, bias = fit_logistic_regression(
        train, train_labels, num_classes=num_classes, weight_decay=chosen, max_iter=max_iter
    )
    scores = torch.addmm(bias, test, weight.T)
    result = accuracy_from_scores(scores, test_labels, prefix="linear")
    result["linear_weight_decay"] = chosen
    return result


def _select_weight_decay(
    train: torch.Tensor,
    labels: torch.Tensor,
    candidates: list[float],
    *,
    num_classes: int,
    max_iter: int,
    holdout_fraction: float,
    selection_rows: int,
    seed: int,
) -> tuple[float, int]:
    """The candidate with the best held-out accuracy (ties keep the earlier one), and the rows it was fit on."""
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"linear_probe: expected holdout_fraction in (0, 1), got {holdout_fraction}")
    rows = torch.from_numpy(subset_indices(train.shape[0], int(selection_rows), labels.numpy(), seed=seed))
    features, targets = train[rows], labels[rows]
    holdout = min(max(1, round(len(rows) * holdout_fraction)), len(rows) - 1)
    fit_rows, held_rows = split_indices(len(rows), targets.numpy(), test_size=holdout, seed=seed)
    fit_rows_t, held_rows_t = torch.from_numpy(fit_rows), torch.from_numpy(held_rows)
    best_accuracy, chosen = -1.0, candidates[0]
    for candidate in candidates:
        weight, bias = fit_logistic_regression(
            features[fit_rows_t], targets[fit_rows_t],
            num_classes=num_classes, weight_decay=candidate, max_iter=max_iter,
        )  # fmt: skip
        predicted = torch.addmm(bias, features[held_rows_t], weight.T).argmax(dim=1)
        accuracy = float((predicted == targets[held_rows_t]).float().mean())
        if accuracy > best_accuracy + 1e-12:
            best_accuracy, chosen = accuracy, candidate
    return chosen, len(fit_rows)


__all__ = ["DEFAULT_WEIGHT_DECAYS", "fit_logistic_regression", "linear_probe_accuracy"]
