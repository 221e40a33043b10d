"""Seed check for METHODS.md row 25: SparK vs SimCLR pretraining under the label-fraction protocol.

Both methods pretrain the main recipe's encoder (SmallResNet (32, 64, 128), stem stride 2) for the
same number of steps of batch 128 on Fashion-MNIST with the recipe's optimiser; only the method
section and the view preset differ:

* ours: SparK (mask ratio 0.6; 28 px images zero-padded to 32 px and masked in 8x8 patches, one per
  last-stage location; one light view: ``crop-flip`` with crop scale (0.67, 1)),
* baseline: SimCLR (temperature 0.2, projection 512/128, ``simclr`` views), as in
  ``benchmarks/image_ssl.py``.

The frozen encoders are then scored by the label-fraction protocol
(:func:`contrastkit.eval.label_fractions.label_fraction_probe`): a logistic-regression probe fit on
1%, 10% and 100% of the labels of a 10k-row stratified subset of the training split (3 nested,
class-stratified subsets per fraction), tested on 5k test rows. The paper's claim (SparK degrades
less than contrastive methods as labels shrink) is about CT scans and full fine-tuning; this
checks the component and protocol, not the medical claim.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch
from checks._common import RECIPE, image_overrides

FRACTIONS = (0.01, 0.1, 1.0)
KEYS = {0.01: "spark-1pct", 0.1: "spark-10pct", 1.0: "spark-100pct"}
PROBE_TRAIN_ROWS, PROBE_TEST_ROWS, REPEATS = 10000, 5000, 3
QUICK_PROBE_ROWS = (1000, 500, 2)

SPARK = {"name": "spark", "mask_ratio": 0.6}
SPARK_VIEWS = ("crop-flip", ["views.crop_scale=[0.67,1.0]"])
SIMCLR = {"name": "simclr", "temperature": 0.2, "projection_hidden_dim": 512, "projection_dim": 128}
SIMCLR_VIEWS = ("simclr", [])

_CLAIM = ("SparK holds up better than contrastive pretraining as the labelled set shrinks "
          "(medical CT, fine-tuning; here Fashion-MNIST, linear probe)")
ROWS = [
    dict(key=KEYS[fraction], method="SparK (mask 0.6, 8 px patches, 28->32 px pad)", baseline="SimCLR (tau 0.2)",
         data="Fashion-MNIST", metric=f"linear top-1 @ {label} labels (10k probe rows, 3 subsets)",
         budget="400 steps x batch 128", higher_is_better=True, claim=_CLAIM)
    for fraction, label in ((0.01, "1%"), (0.1, "10%"), (1.0, "100%"))
]



def _pretrain(method: dict[str, Any], views: tuple[str, list[str]], seed: int, quick: bool, splits=None):
    """Train ``method`` with the main recipe as :func:`contrastkit.train.run.run` does; return it and the data.

    ``splits`` reuses data already loaded for the same recipe (both methods share the data section).
    """
    from contrastkit.train.config import load_config, train_config
    from contrastkit.train.run import build_method_from_config, load_data
    from contrastkit.utils.seed import seed_everything
    from contrastkit.train.trainer import Trainer

    preset, view_overrides = views
    overrides = image_overrides(seed, quick) + [f"method={json.dumps(method)}", f"views.preset={preset}"]
    # Quick mode too runs on Fashion-MNIST: digits are 8x8, a single 8 px SparK patch.
    overrides += view_overrides + ["data.name=fashion-mnist"]
    config = load_config(RECIPE, overrides)
    splits = load_data(config) if splits is None else splits
    model = build_method_from_config(config, splits)
    training = train_config(config)
    training.progress = False
    seed_everything(seed + 1)  # as run(): training draws its own random numbers after the build
    with tempfile.TemporaryDirectory(prefix="seed-check-spark-") as folder:
        Trainer(model, splits.train, training, Path(folder) / "run", seed=seed).fit()
    return model, splits


def _features(model, inputs: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return torch.cat([model.embed(inputs[i : i + batch_size]).float() for i in range(0, len(inputs), batch_size)])


def run(seed: int, quick: bool = False) -> dict[str, dict[str, float]]:
    from contrastkit.data.splits import subset_indices
    from contrastkit.eval.label_fractions import label_fraction_probe

    train_rows, test_rows, repeats = QUICK_PROBE_ROWS if quick else (PROBE_TRAIN_ROWS, PROBE_TEST_ROWS, REPEATS)
    results: dict[str, dict[float, Any]] = {}
    splits = None
    for name, method, views in (("ours", SPARK, SPARK_VIEWS), ("baseline", SIMCLR, SIMCLR_VIEWS)):
        model, splits = _pretrain(method, views, seed, quick, splits)
        train, test = splits.train, splits.test
        train_index = torch.from_numpy(subset_indices(len(train), train_rows, train.labels.numpy(), seed=seed))
        test_index = torch.from_numpy(subset_indices(len(test), test_rows, test.labels.numpy(), seed=seed))
        results[name] = label_fraction_probe(
            _features(model, train.inputs[train_index]), train.labels[train_index],
            _features(model, test.inputs[test_index]), test.labels[test_index],
            fractions=FRACTIONS, repeats=repeats, seed=seed, num_classes=splits.num_classes,
            max_iter=30 if quick else 100,
        )  # fmt: skip
    return {
        KEYS[fraction]: {
            "ours": results["ours"][fraction].mean,
            "baseline": results["baseline"][fraction].mean,
            "ours_subset_std": results["ours"][fraction].std,
            "baseline_subset_std": results["baseline"][fraction].std,
        }
        for fraction in FRACTIONS
    }


def summary(runs: dict[str, dict]) -> str:
    """The claim is about robustness: accuracy lost from 100% to 1% of the labels, per method."""
    import statistics

    lost = {who: [r["rows"]["spark-100pct"][who] - r["rows"]["spark-1pct"][who] for r in runs.values()]
            for who in ("ours", "baseline")}

    def spread(values: list[float]) -> str:
        return f"{statistics.mean(values):.3f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.3f}"

    verdict = "did not hold up better" if statistics.mean(lost["ours"]) >= statistics.mean(lost["baseline"]) \
        else "held up better"
    return (f"SparK's claim is about robustness as labels shrink: linear top-1 lost {spread(lost['ours'])} from 100% "
            f"to 1% of the labels with SparK and {spread(lost['baseline'])} with SimCLR, so SparK {verdict} here.")
