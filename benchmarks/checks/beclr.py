"""BECLR's OpTA: few-shot episodes on classes unseen in pretraining, with and without OpTA.

An encoder (the main recipe's SmallResNet, BYOL view preset) is pretrained with the BECLR
method (:mod:`contrastkit.methods.beclr`, DyCE enhancement on) on the Fashion-MNIST TRAIN
images of classes 0-4 only. Its frozen features of the TEST images of classes 5-9 are split
into 5-way K-shot 15-query episodes (600 per setting, the same episodes for both
classifiers). Ours: nearest class mean after OpTA aligns the prototypes to the episode's
queries (:func:`contrastkit.eval.fewshot.opta` in the official form of BECLR's
``evaluate.py``: 5 passes at 1-shot; 1 pass then ``0.7 * aligned + 0.3 * original`` at
5-shot). Baseline: the plain nearest class mean. Both on the same per-sample standardised
features.

Extra measurements per row (what the docs' explanation rests on): ``two_pass`` (the earlier
5-shot form: 2 passes, no blend), ``opta_logistic`` (the official classifier: logistic
regression on the aligned prototypes), ``untrained_prototype`` / ``untrained_opta`` (the same
episodes on the random-init encoder's features), and two measures of how well the episode's
features cluster by class: ``plan_purity`` (the share of the first OpTA plan's mass that goes
from each prototype to queries of its own class; chance 0.2, 1.0 when transport moves every
prototype onto its own class) and ``query_1nn_purity`` (share of queries whose nearest other
query is of the same class), each also for the untrained encoder.

Paper claim (Poulakakis-Daktylidis & Jamali-Rad, ICLR 2024): OpTA gives a clear gain at
1-shot and a smaller one at 5-shot (the sample-bias it corrects shrinks with more shots).
"""

from __future__ import annotations

import tempfile
from typing import Any

import torch

#: Pretraining budget (same as the other image checks).
STEPS = 400
QUICK_STEPS = 5
BATCH = 128
EPISODES = 600
QUICK_EPISODES = 100
TRAIN_CLASSES = (0, 1, 2, 3, 4)
TEST_CLASSES = (5, 6, 7, 8, 9)

ROWS = [
    dict(key="beclr-1shot", method="BECLR pretrain + OpTA (official: 5 passes), nearest prototype",
         baseline="same features, nearest prototype (no OpTA)", data="Fashion-MNIST (pretrain 0-4, test 5-9)",
         metric="5-way 1-shot accuracy (600 episodes)", budget=f"{STEPS} steps x batch {BATCH}",
         higher_is_better=True,
         claim="OpTA (optimal-transport prototype alignment) improves 1-shot accuracy on unseen classes"),
    dict(key="beclr-5shot", method="BECLR pretrain + OpTA (official: 1 pass, 0.7 blend), nearest prototype",
         baseline="same features, nearest prototype (no OpTA)", data="Fashion-MNIST (pretrain 0-4, test 5-9)",
         metric="5-way 5-shot accuracy (600 episodes)", budget=f"{STEPS} steps x batch {BATCH}",
         higher_is_better=True,
         claim="OpTA still helps at 5-shot, by less than at 1-shot"),
]


def _classes(dataset: Any, classes: tuple[int, ...]) -> Any:
    keep = torch.isin(dataset.labels, torch.tensor(classes))
    return dataset.subset(keep.nonzero().squeeze(1))


def pretrain_features(seed: int, quick: bool, *, train_steps: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Pretrain BECLR on the train split's classes 0-4; return frozen features and labels of test classes 5-9.

    ``train_steps=False``: the same seeded construction without any training step (the
    random-init encoder the run starts from).
    """
    from contrastkit.data import load_dataset
    from contrastkit.eval.features import extract_features
    from contrastkit.methods.beclr import BECLR
    from contrastkit.nn.registry import build_encoder
    from contrastkit.utils.seed import seed_everything
    from contrastkit.train.trainer import TrainConfig, Trainer
    from contrastkit.views.image import build_views

    splits = load_dataset("digits" if quick else "fashion-mnist")
    train = _classes(splits.train, TRAIN_CLASSES)
    test = _classes(splits.test, TEST_CLASSES)
    channels, size = splits.input_shape[0], splits.input_shape[-1]
    seed_everything(seed)
    # The main recipe's encoder and view settings (simclr-fashion-mnist.yaml), BYOL's views.
    encoder = build_encoder("small-resnet", in_channels=channels, image_size=size, widths=(32, 64, 128),
                            stem_stride=2)
    views = build_views("byol", image_size=size, channels=channels, blur_p=0.0)
    if quick:  # a memory that fills in two steps and enhancement from step 2, so the DyCE path runs
        method = BECLR(encoder, views, memory_size=4 * BATCH, num_partitions=8, memory_start_step=2)
    else:  # defaults: memory 20 x 128 rows, 50 partitions, k=5, enhancement from step 60
        method = BECLR(encoder, views)
    config = TrainConfig(
        batch_size=BATCH, steps=QUICK_STEPS if quick else STEPS, optimizer="adamw", lr=4e-3, weight_decay=1e-4,
        warmup_fraction=0.05, precision="auto", checkpoint_every=0, log_every=50, progress=False, device="auto",
    )  # fmt: skip
    seed_everything(seed + 1)
    with tempfile.TemporaryDirectory(prefix="seed-check-beclr-") as folder:
        trainer = Trainer(method, train, config, folder, seed=seed)
        if train_steps:
            trainer.fit()
    method.eval()
    features, labels = extract_features(method.embed, test, batch_size=1024, device=trainer.device)
    assert labels is not None
    return features, labels


def cluster_measures(features: torch.Tensor, labels: torch.Tensor, shots: int, episodes: int,
                     seed: int) -> dict[str, float]:
    """How well the episodes' standardised features cluster by class (the same episodes as
    :func:`contrastkit.eval.fewshot.evaluate_episodes` with this seed).

    ``plan_purity``: mean over episodes of the first OpTA transport plan's mass (prototypes =
    support means, to the queries) that lands on queries of the prototype's own class; the
    plan's rows carry 1/5 each, so chance is 0.2. ``query_1nn_purity``: share of queries whose
    nearest other query (squared Euclidean) has the same class.
    """
    from contrastkit.eval.fewshot import sample_episodes, standardize, transport_plan

    ways, queries = 5, 15
    generator = torch.Generator().manual_seed(int(seed))
    sampled = sample_episodes(labels, ways=ways, shots=shots, queries=queries, episodes=episodes,
                              generator=generator)
    feats = standardize(features.float())
    support = feats[sampled.support]  # [E, ways, shots, D]
    query = feats[sampled.query].flatten(1, 2)  # [E, ways * queries, D]
    query_class = torch.arange(ways).repeat_interleave(queries)
    plan = transport_plan(support.mean(2), query)  # [E, ways, ways * queries]
    own = (query_class.unsqueeze(0) == torch.arange(ways).unsqueeze(1)).float()  # [ways, M]
    plan_purity = float((plan * own).sum(dim=(1, 2)).div(plan.sum(dim=(1, 2))).mean())
    distances = torch.cdist(query, query).pow(2)
    distances.diagonal(dim1=1, dim2=2).fill_(float("inf"))
    nearest = distances.argmin(dim=2)  # [E, M]
    query_1nn = float((query_class[nearest] == query_class).float().mean())
    return {"plan_purity": plan_purity, "query_1nn_purity": query_1nn}


def run(seed: int, quick: bool = False) -> dict[str, dict[str, float]]:
    from contrastkit.eval.fewshot import evaluate_episodes

    features, labels = pretrain_features(seed, quick)
    untrained, untrained_labels = pretrain_features(seed, quick, train_steps=False)
    episodes = QUICK_EPISODES if quick else EPISODES
    results: dict[str, dict[str, float]] = {}
    for shots, key in ((1, "beclr-1shot"), (5, "beclr-5shot")):
        common = dict(ways=5, shots=shots, queries=15, episodes=episodes, seed=seed)
        ours = evaluate_episodes(features, labels, classifier="opta", **common)
        baseline = evaluate_episodes(features, labels, classifier="prototype", **common)
        results[key] = {
            "ours": ours["accuracy"], "baseline": baseline["accuracy"],
            "ours_ci95": ours["ci95"], "baseline_ci95": baseline["ci95"],
            "opta_logistic": evaluate_episodes(features, labels, classifier="opta-logistic", **common)["accuracy"],
            "untrained_prototype": evaluate_episodes(untrained, untrained_labels, classifier="prototype",
                                                     **common)["accuracy"],
            "untrained_opta": evaluate_episodes(untrained, untrained_labels, classifier="opta", **common)["accuracy"],
        }  # fmt: skip
        if shots > 1:
            results[key]["two_pass"] = evaluate_episodes(features, labels, classifier="opta", opta_form="two-pass",
                                                         **common)["accuracy"]
        for name, value in cluster_measures(features, labels, shots, episodes, seed).items():
            results[key][name] = value
        for name, value in cluster_measures(untrained, untrained_labels, shots, episodes, seed).items():
            results[key][f"untrained_{name}"] = value
    return results
