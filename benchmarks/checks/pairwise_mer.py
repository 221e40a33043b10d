"""Pairwise MER check (METHODS.md #29) on proxy modalities: BasicMotions' accelerometer and gyroscope.

The paper's modalities (text, audio, video of IEMOCAP / CMU-MOSEI) are not offline; the proxy
is aeon's bundled BasicMotions (UEA; 40 train / 40 test series, 6 channels x 100 steps, 4
activities): channels 0-2 (accelerometer) and 3-5 (gyroscope) are two modalities, one TS2Vec
dilated-conv tower each (``ts-dilated-conv-pooled``, 160-d, hidden 64, depth 6), trained with
the pairwise symmetric InfoNCE (tau 0.07, no labels) by the ``pairwise-mer-basicmotions``
recipe, 200 steps of batch 16. Representations, all frozen, scored by the series protocol's
RBF-SVM (TS2Vec's; all 40 training labels):

* fused: the concatenated tower outputs (320-d), the paper's inference representation;
* single modality: one tower's 160 columns of the same model;
* random init: the same towers before training (seeded identically);
* SimCLR on the 6-channel series: one tower of the same family over all 6 channels, 320-d,
  jitter-scale views (TS-TCC's weak view), tau 0.2, the same steps, batch and optimiser.

Extras per row: the same comparison with one label per class (a linear probe fit on 4 rows,
mean over 20 random draws), where the full-label SVM saturates. These numbers do not
reproduce the paper's (different data, modalities and scale); they test the direction of its
claim: fused > single-modality > random.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from contrastkit.eval.linear_probe import linear_probe_accuracy
from contrastkit.eval.svm import svm_probe

_BUDGET = "200 steps x batch 16, dilated-conv towers 2x160-d (SimCLR: 1x320-d)"
_DATA = "BasicMotions (aeon, UEA): accelerometer ch 0-2, gyroscope ch 3-5"
_METRIC = "RBF-SVM test acc. (40 labels)"
_CLAIM = ("unsupervised pairwise contrast between modalities, fused by concatenation at inference, beats "
          "single-modality and untrained encoders (expectation: fused > single > random)")

ROWS = [
    dict(key="pairwise_mer_vs_random", method="pairwise MER, fused", baseline="random-init towers, fused",
         data=_DATA, metric=_METRIC, budget=_BUDGET, claim=_CLAIM),
    dict(key="pairwise_mer_vs_accelerometer", method="pairwise MER, fused", baseline="same model, accelerometer only",
         data=_DATA, metric=_METRIC, budget=_BUDGET, claim=_CLAIM),
    dict(key="pairwise_mer_vs_gyroscope", method="pairwise MER, fused", baseline="same model, gyroscope only",
         data=_DATA, metric=_METRIC, budget=_BUDGET, claim=_CLAIM),
    dict(key="pairwise_mer_single_vs_random", method="pairwise MER, accelerometer only",
         baseline="random-init accelerometer tower", data=_DATA, metric=_METRIC, budget=_BUDGET, claim=_CLAIM),
    dict(key="pairwise_mer_vs_simclr", method="pairwise MER, fused", baseline="SimCLR on the 6-channel series",
         data=_DATA, metric=_METRIC, budget=_BUDGET, claim=_CLAIM),
]

STEPS, QUICK_STEPS = 200, 3
FEW_SHOT_DRAWS = 20


def _features(method, splits) -> tuple[torch.Tensor, torch.Tensor]:
    method.eval()
    with torch.no_grad():
        train, test = method.embed(splits.train.inputs), method.embed(splits.test.inputs)
    method.train()
    return train.float(), test.float()


def _one_shot(train: torch.Tensor, test: torch.Tensor, splits, seed: int, draws: int) -> float:
    """Linear-probe test accuracy from one labelled series per class, mean over ``draws`` draws."""
    labels = splits.train.labels
    generator = torch.Generator().manual_seed(10_000 + seed)
    scores = []
    for _ in range(draws):
        rows = torch.stack([torch.nonzero(labels == c).flatten()[torch.randint(int((labels == c).sum()), (1,),
                                                                                generator=generator)][0]
                            for c in range(splits.num_classes)])
        # One row per class: no hold-out to choose the penalty from, so one fixed weak penalty.
        scores.append(linear_probe_accuracy(train[rows], labels[rows], test, splits.test.labels,
                                            weight_decay=1e-3, num_classes=splits.num_classes)["linear_top1"])
    return sum(scores) / len(scores)


def _scores(train: torch.Tensor, test: torch.Tensor, splits, seed: int, draws: int) -> dict[str, float]:
    svm = svm_probe(train, splits.train.labels, test, splits.test.labels, seed=0)["svm_accuracy"]
    return {"svm": float(svm), "one_shot": _one_shot(train, test, splits, seed, draws)}


def _train(recipe: str, overrides: list[str], seed: int):
    """Build the recipe's method, score it untrained, train it; return (splits, method, untrained features)."""
    from contrastkit.train.config import load_config, resolved, train_config
    from contrastkit.train.run import build_method_from_config, load_data
    from contrastkit.train.trainer import Trainer
    from contrastkit.utils.seed import seed_everything

    config = resolved(load_config(recipe, [f"seed={seed}", "train.progress=false", "train.checkpoint_every=0",
                                           *overrides]))
    splits = load_data(config)
    method = build_method_from_config(config, splits)
    untrained = _features(method, splits)
    seed_everything(seed + 1)
    with tempfile.TemporaryDirectory(prefix="seed-check-mer-") as folder:
        Trainer(method, splits.train, train_config(config), Path(folder), seed=seed).fit()
    return splits, method, untrained


def run(seed: int, quick: bool = False) -> dict[str, dict[str, float]]:
    torch.set_num_threads(1)
    steps = QUICK_STEPS if quick else STEPS
    draws = 2 if quick else FEW_SHOT_DRAWS
    splits, mer, (random_train, random_test) = _train("pairwise-mer-basicmotions", [f"train.steps={steps}"], seed)
    fused_train, fused_test = _features(mer, splits)
    width = mer.encoder.group_dims[0]
    parts = {"accelerometer": slice(0, width), "gyroscope": slice(width, 2 * width)}
    fused = _scores(fused_train, fused_test, splits, seed, draws)
    single = {name: _scores(fused_train[:, cols], fused_test[:, cols], splits, seed, draws)
              for name, cols in parts.items()}
    random = _scores(random_train, random_test, splits, seed, draws)
    random_single = {name: _scores(random_train[:, cols], random_test[:, cols], splits, seed, draws)
                     for name, cols in parts.items()}
    simclr_overrides = [
        "data.name=uea:BasicMotions", f"train.steps={steps}",
        "encoder={name: ts-dilated-conv-pooled, output_dim: 320, hidden_dim: 64, depth: 6}",
    ]
    simclr_splits, simclr, _ = _train("simclr-series", simclr_overrides, seed)
    simclr_scores = _scores(*_features(simclr, simclr_splits), simclr_splits, seed, draws)

    def row(ours: dict[str, float], baseline: dict[str, float], **extras: float) -> dict[str, float]:
        return {"ours": ours["svm"], "baseline": baseline["svm"], "ours_one_shot": ours["one_shot"],
                "baseline_one_shot": baseline["one_shot"], **extras}

    return {
        "pairwise_mer_vs_random": row(fused, random),
        "pairwise_mer_vs_accelerometer": row(fused, single["accelerometer"]),
        "pairwise_mer_vs_gyroscope": row(fused, single["gyroscope"]),
        "pairwise_mer_single_vs_random": row(
            single["accelerometer"], random_single["accelerometer"],
            gyroscope_svm=single["gyroscope"]["svm"], random_gyroscope_svm=random_single["gyroscope"]["svm"],
            gyroscope_one_shot=single["gyroscope"]["one_shot"],
            random_gyroscope_one_shot=random_single["gyroscope"]["one_shot"],
        ),
        "pairwise_mer_vs_simclr": row(fused, simclr_scores),
    }
