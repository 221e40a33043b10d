"""Seed check for SBCL (Hou et al., ICCV 2023; METHODS.md #54, FULL).

SBCL (balanced k-means subclasses of about tail-class size, bi-granularity SupCon loss,
gamma = 0.25, per-class ranking temperatures) against SupCon on a long-tailed Fashion-MNIST
training set: an exponential profile with imbalance ratio 100, ``HEAD`` images of the largest
class down to ``HEAD / 100`` of the smallest (class order shuffled per seed), about 2.5k images
in all. Both pretrain the recipe's SmallResNet (widths 32/64/128, stem stride 2, 128-d) with the
recipe's projector, batch, AdamW and cosine schedule for the same number of steps on the
"simclr" views (blur off), in a minimal loop that passes ``batch.index``. Then a linear probe
(logistic regression with class-balanced re-weighting, the same for both) is fit on the frozen
encoder features of the long-tailed training set and scored by balanced (per-class mean)
accuracy on a balanced Fashion-MNIST test subset. SBCL re-clusters every ``RECLUSTER`` steps;
the first ``RECLUSTER`` steps are the SupCon warm-up. Extras: many-shot (the 3 largest classes)
and few-shot (the 3 smallest) mean per-class accuracy, and the number of subclasses.
The paper's claim (CIFAR-100-LT, ImageNet-LT, iNaturalist): subclass balancing beats SupCon-style
instance-balanced contrastive pretraining on long-tailed data, mostly on the tail.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

HEAD, RATIO = 1000, 100
STEPS, QUICK_STEPS = 300, 4
RECLUSTER = 40
BATCH = 128
TEST_PER_CLASS = 300

ROWS = [
    dict(
        key="sbcl",
        method=f"SBCL (gamma=0.25, tau=0.1, tau_b=0.07, re-cluster every {RECLUSTER} steps)",
        baseline="SupCon (tau=0.1)",
        data=f"Fashion-MNIST-LT (exp, ratio {RATIO}, {HEAD}..{HEAD // RATIO} per class)",
        metric="balanced test accuracy, class-balanced linear probe",
        budget=f"{STEPS} steps x batch {BATCH}",
        higher_is_better=True,
        claim="subclass-balancing contrastive pretraining beats SupCon on long-tailed data",
    )
]


def long_tailed_indices(labels: torch.Tensor, head: int, ratio: float, generator: torch.Generator) -> torch.Tensor:
    """Rows of an exponential long-tailed subset: class of rank r keeps ``head * ratio^(-r / (C - 1))`` rows."""
    classes = torch.unique(labels)
    order = classes[torch.randperm(classes.numel(), generator=generator)]
    rows = []
    for rank, c in enumerate(order.tolist()):
        keep = max(1, int(head * ratio ** (-rank / (classes.numel() - 1))))
        pool = torch.nonzero(labels == c).flatten()
        rows.append(pool[torch.randperm(pool.numel(), generator=generator)[:keep]])
    return torch.cat(rows)


def _data(seed: int, quick: bool):
    from contrastkit.data import load_dataset

    g = torch.Generator().manual_seed(seed)
    if quick:
        splits = load_dataset("digits")
        train_rows = long_tailed_indices(splits.train.labels, 100, 10, g)
        return splits.train.inputs[train_rows], splits.train.labels[train_rows], splits.test.inputs, splits.test.labels
    splits = load_dataset("fashion-mnist")
    train_rows = long_tailed_indices(splits.train.labels, HEAD, RATIO, g)
    test_rows = torch.cat([
        torch.nonzero(splits.test.labels == c).flatten()[:TEST_PER_CLASS] for c in torch.unique(splits.test.labels)
    ])
    return (splits.train.inputs[train_rows], splits.train.labels[train_rows],
            splits.test.inputs[test_rows], splits.test.labels[test_rows])


def _pretrain(name: str, x: torch.Tensor, y: torch.Tensor, seed: int, steps: int, recluster: int) -> nn.Module:
    from contrastkit.data.batch import Batch
    from contrastkit.methods.sbcl import SBCL
    from contrastkit.methods.supcon import SupCon
    from contrastkit.nn.registry import build_encoder
    from contrastkit.utils.seed import seed_everything
    from contrastkit.views.image import build_views

    seed_everything(seed)
    size = x.shape[-1]
    encoder = build_encoder("small-resnet", in_channels=1, image_size=size, widths=(32, 64, 128), stem_stride=2)
    views = build_views("simclr", image_size=size, channels=1, blur_p=0.0)
    if name == "sbcl":
        method: nn.Module = SBCL(encoder, views, temperature=0.1, recluster_every=recluster, num_samples=x.shape[0])
    else:
        method = SupCon(encoder, views, temperature=0.1)
    optimizer = torch.optim.AdamW(method.parameters(), lr=4e-3, weight_decay=1e-4)
    warmup = max(1, int(0.05 * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(x.shape[0], generator=g)
    cursor = 0
    method.train()
    for step in range(steps):
        if cursor + BATCH > order.numel():  # a new epoch: reshuffle, drop the last partial batch
            order, cursor = torch.randperm(x.shape[0], generator=g), 0
        index = order[cursor:cursor + BATCH]
        cursor += BATCH
        output = method(Batch(x[index], y[index], index))
        optimizer.zero_grad(set_to_none=True)
        output.loss.backward()
        optimizer.step()
        schedule.step()
        method.on_step_end(step, steps)
    method.eval()
    method.n_subclasses = float(int(method.subclass.max()) + 1) if name == "sbcl" else float("nan")  # type: ignore
    return method


@torch.no_grad()
def _features(method: nn.Module, x: torch.Tensor) -> np.ndarray:
    return torch.cat([method.embed(chunk) for chunk in x.split(512)]).float().numpy()


def _probe(method: nn.Module, data, seed: int) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x_train, y_train, x_test, y_test = data
    scaler = StandardScaler().fit(_features(method, x_train))
    probe = LogisticRegression(class_weight="balanced", max_iter=2000, C=1.0, random_state=seed)
    probe.fit(scaler.transform(_features(method, x_train)), y_train.numpy())
    predicted = probe.predict(scaler.transform(_features(method, x_test)))
    truth = y_test.numpy()
    per_class = {int(c): float((predicted[truth == c] == c).mean()) for c in np.unique(truth)}
    # Many-shot / few-shot: the third of the classes with the most / fewest training images.
    by_size = torch.argsort(torch.bincount(y_train), descending=True).tolist()
    third = max(1, len(by_size) // 3)
    many = [per_class[c] for c in by_size[:third] if c in per_class]
    few = [per_class[c] for c in by_size[-third:] if c in per_class]
    return {
        "balanced": float(np.mean(list(per_class.values()))),
        "many": float(np.mean(many)) if many else float("nan"),
        "few": float(np.mean(few)) if few else float("nan"),
    }


def run(seed: int, quick: bool = False) -> dict[str, dict[str, float]]:
    data = _data(seed, quick)
    steps = QUICK_STEPS if quick else STEPS
    recluster = 2 if quick else RECLUSTER
    ours_model = _pretrain("sbcl", data[0], data[1], seed, steps, recluster)
    ours = _probe(ours_model, data, seed)
    base = _probe(_pretrain("supcon", data[0], data[1], seed, steps, recluster), data, seed)
    return {
        "sbcl": {
            "ours": ours["balanced"],
            "baseline": base["balanced"],
            "ours_many": ours["many"],
            "baseline_many": base["many"],
            "ours_few": ours["few"],
            "baseline_few": base["few"],
            "subclasses": ours_model.n_subclasses,  # type: ignore[attr-defined]
        }
    }
