"""Seed check for Mixed Barlow Twins (Bandara et al., 2023; METHODS.md #6, FULL).

Barlow Twins and Mixed Barlow Twins trained on Fashion-MNIST with the main recipe's
encoder, batch, optimiser and step budget (:func:`checks._common.train_image`), both with
the "byol" view preset and ``lambda_BT = 5e-3`` as in ``benchmarks/image_ssl.py``; the
only difference is the mixup regulariser (``lambda_reg = 4``, the paper's CIFAR value).
The mixed branch costs one extra encoder pass per step (about 1.5x the compute), with the
same number of steps. The paper's claim is about 1000-epoch runs where Barlow Twins starts
to overfit; 400 steps (under one epoch) tests only that the regulariser does not hurt, or
helps, early — not the late-training overfitting itself.
"""

from __future__ import annotations

from checks._common import train_image  # benchmarks/ is on sys.path (seed_checks.py)

ROWS = [
    {
        "key": "mixed-barlow-twins",
        "method": "Mixed Barlow Twins (lambda_reg=4, alpha~Beta(1,1))",
        "baseline": "Barlow Twins",
        "data": "Fashion-MNIST",
        "metric": "kNN top-1",
        "budget": "400 steps x batch 128",
        "higher_is_better": True,
        "claim": "a mixup cross-correlation regulariser makes Barlow Twins at least as good (less overfitting)",
    }
]

VIEWS = "byol"
LAMBD = 5e-3



def run(seed: int, quick: bool = False) -> dict[str, dict[str, float]]:
    ours = train_image({"name": "mixed-barlow-twins", "lambd": LAMBD, "mix_weight": 4.0}, VIEWS, seed, quick)
    baseline = train_image({"name": "barlow-twins", "lambd": LAMBD}, VIEWS, seed, quick)
    return {"mixed-barlow-twins": {"ours": float(ours["knn_top1"]), "baseline": float(baseline["knn_top1"])}}
