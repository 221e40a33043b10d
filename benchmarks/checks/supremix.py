"""Seed check for SupReMix (Wu, Dong et al., 2023, "Mixup Your Own Pairs"; METHODS.md #58, FULL).

SupReMix (weighted supervised contrastive regression plus anchor-inclusive hard-negative and
anchor-exclusive hard-positive embedding mixtures) against the same loss without mixtures (the
official ``supcon`` + ``use_weight`` baseline), on scikit-learn's diabetes regression set
(442 x 10), 5-fold cross-validation with a per-seed shuffle. Both pretrain the same small MLP
encoder and projector with the same views (Gaussian feature noise, sigma 0.1 on standardised
features), optimiser, batch and steps, and the same label-distance weights (``'L1_inv'``, the
official training default); only the mixture columns differ. The contrastive labels are the
targets binned to width 10 (so same-bin samples are positives, as METHODS.md suggests for
continuous targets) and the weights are in bin units. A ridge regressor (RidgeCV) is then fit
on the frozen encoder features of the training folds; the metric is the test MAE in target
units, averaged over folds (lower is better). Extras: the Spearman correlation between pairwise
embedding distances and pairwise target distances on the test folds (ordinality of the
embedding), and the ridge MAE on the raw features for scale. The paper's claim (six regression
datasets incl. UCI-airfoil): the mixtures improve over the contrastive regression baseline.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

STEPS, QUICK_STEPS = 300, 10
FOLDS, QUICK_FOLDS = 5, 2
BATCH = 64
BIN = 10.0
NOISE = 0.1
TEMPERATURE = 0.2
DISTANCE = "L1_inv"
CAPS = 64

ROWS = [
    dict(
        key="supremix",
        method=f"SupReMix (tau={TEMPERATURE}, {DISTANCE} weights, Beta(2,8), <= {CAPS}+{CAPS} mixtures/anchor)",
        baseline=f"weighted SupCon regression, no mixtures (tau={TEMPERATURE}, {DISTANCE})",
        data="sklearn diabetes (442 x 10), 5-fold CV",
        metric="test MAE, ridge on frozen features",
        budget=f"{STEPS} steps x batch {BATCH} per fold",
        higher_is_better=False,
        claim="embedding-level mixtures as hard pairs improve contrastive regression",
    )
]


class _Model(nn.Module):
    def __init__(self, dim_in: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(dim_in, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64))
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32))


def _pretrain(x: torch.Tensor, labels: torch.Tensor, mixtures: bool, seed: int, steps: int) -> _Model:
    from contrastkit.functional.supremix import supremix_loss

    torch.manual_seed(seed)
    model = _Model(x.shape[1])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        rows = torch.randperm(x.shape[0], generator=g)[:BATCH]
        batch = x[rows]
        views = torch.cat([batch + NOISE * torch.randn(batch.shape, generator=g),
                           batch + NOISE * torch.randn(batch.shape, generator=g)])
        z_a, z_b = model.head(model.encoder(views)).chunk(2)
        loss = supremix_loss(
            torch.stack([z_a, z_b], dim=1), labels[rows], temperature=TEMPERATURE, distance=DISTANCE,
            mix_negatives=mixtures, mix_positives=mixtures, max_negatives=CAPS, max_positives=CAPS, generator=g,
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()


def _evaluate(model: _Model, x_train, y_train, x_test, y_test) -> tuple[float, float]:
    from scipy.spatial.distance import pdist
    from scipy.stats import spearmanr
    from sklearn.linear_model import RidgeCV

    with torch.no_grad():
        f_train, f_test = model.encoder(x_train).numpy(), model.encoder(x_test).numpy()
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(f_train, y_train)
    mae = float(np.abs(ridge.predict(f_test) - y_test).mean())
    rho = float(spearmanr(pdist(f_test), pdist(y_test.reshape(-1, 1))).statistic)
    return mae, rho


def run(seed: int, quick: bool = False) -> dict[str, dict[str, float]]:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold

    x_all, y_all = load_diabetes(return_X_y=True)
    steps = QUICK_STEPS if quick else STEPS
    folds = KFold(QUICK_FOLDS if quick else FOLDS, shuffle=True, random_state=seed)
    scores: dict[str, list[float]] = {k: [] for k in ("ours", "baseline", "ours_rho", "baseline_rho", "raw")}
    for fold, (train, test) in enumerate(folds.split(x_all)):
        mean, std = x_all[train].mean(0), x_all[train].std(0) + 1e-8
        x_train = torch.tensor((x_all[train] - mean) / std, dtype=torch.float32)
        x_test = torch.tensor((x_all[test] - mean) / std, dtype=torch.float32)
        y_train, y_test = y_all[train], y_all[test]
        labels = torch.tensor(np.round(y_train / BIN), dtype=torch.float32)
        raw = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(x_train.numpy(), y_train)
        scores["raw"].append(float(np.abs(raw.predict(x_test.numpy()) - y_test).mean()))
        for key, mix in (("ours", True), ("baseline", False)):
            model = _pretrain(x_train, labels, mix, seed * 100 + fold, steps)
            mae, rho = _evaluate(model, x_train, y_train, x_test, y_test)
            scores[key].append(mae)
            scores[f"{key}_rho"].append(rho)
    out = {key: float(np.mean(values)) for key, values in scores.items()}
    return {
        "supremix": {
            "ours": out["ours"],
            "baseline": out["baseline"],
            "ours_spearman": out["ours_rho"],
            "baseline_spearman": out["baseline_rho"],
            "raw_ridge_mae": out["raw"],
        }
    }
