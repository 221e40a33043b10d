"""Seed check for MoCHi (Kalantidis et al., NeurIPS 2020; METHODS.md #1, FULL): MoCHi vs MoCo v2.

Both runs train the main recipe's encoder with the MoCo v2 view preset, temperature 0.2
and a 4096-key queue for the same number of steps; the only difference is MoCHi's
synthetic negatives (Kalantidis et al., NeurIPS 2020). The metric is the recipe's weighted
kNN top-1 on the test split. This is a small-data, short-budget proxy of the paper's
ImageNet claim, not a reproduction of its numbers.
"""

from __future__ import annotations

from checks._common import train_image  # benchmarks/ is on sys.path (seed_checks.py)

MOCO = {"name": "moco", "temperature": 0.2, "queue_size": 4096}
MOCHI_OPTIONS = {"num_hardest": 256, "num_mixed": 256, "num_query_mixed": 32, "mixing_start_step": 32}
VIEWS = "moco-v2"

ROWS = [
    {
        "key": "mochi",
        "method": "MoCHi (N=256, s=256, s'=32)",
        "baseline": "MoCo v2",
        "data": "Fashion-MNIST",
        "metric": "kNN top-1",
        "budget": "400 steps x batch 128",
        "higher_is_better": True,
        "claim": "synthetic hard negatives mixed from the queue improve MoCo v2's representation at equal cost",
    }
]



def run(seed: int, quick: bool = False) -> dict[str, dict[str, float]]:
    """Train MoCo v2 and MoCHi with the same seed and budget; return their kNN top-1."""
    mochi = {**MOCO, "name": "mochi", **MOCHI_OPTIONS}
    if quick:
        # Quick runs take 5 steps: start mixing after 2 so the mixing path is exercised.
        mochi["mixing_start_step"] = 2
    baseline = train_image(MOCO, VIEWS, seed, quick)
    ours = train_image(mochi, VIEWS, seed, quick)
    return {"mochi": {"ours": float(ours["knn_top1"]), "baseline": float(baseline["knn_top1"])}}
