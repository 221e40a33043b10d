"""Seed check for DirectPred (Tian, Chen & Ganguli, ICML 2021; METHODS.md #24, FULL).

SimSiam with its learned 2-layer predictor against SimSiam whose predictor is DirectPred's
closed-form ``W_p = U diag(sqrt(s / max s) + eps) U^T`` (rho 0.3, eps 0.01, freq 1), both
with the "moco-v2" view preset, the main recipe's encoder, batch, optimiser and step budget
(:func:`checks._common.train_image`). Only the predictor differs. The paper's claim
(ImageNet, 60-300 epochs): DirectPred is comparable to a trained 2-layer predictor and does
not collapse. Here the kNN accuracy doubles as the collapse indicator (a collapsed encoder
scores about 10%, chance on 10 classes).
"""

from __future__ import annotations

from checks._common import train_image  # benchmarks/ is on sys.path (seed_checks.py)

ROWS = [
    {
        "key": "directpred",
        "method": "DirectPred (rho=0.3, eps=0.01, freq=1) on SimSiam",
        "baseline": "SimSiam (learned 2-layer predictor)",
        "data": "Fashion-MNIST",
        "metric": "kNN top-1",
        "budget": "400 steps x batch 128",
        "higher_is_better": True,
        "claim": "a closed-form predictor from the feature correlation matches a trained predictor, no collapse",
    }
]

VIEWS = "moco-v2"



def run(seed: int, quick: bool = False) -> dict[str, dict[str, float]]:
    ours = train_image({"name": "directpred"}, VIEWS, seed, quick)
    baseline = train_image({"name": "simsiam"}, VIEWS, seed, quick)
    return {"directpred": {"ours": float(ours["knn_top1"]), "baseline": float(baseline["knn_top1"])}}
