"""Seed check for OBoW (Gidaris et al., CVPR 2021; METHODS.md #28, FULL).

OBoW (EMA teacher, online vocabularies of K words on the encoder's last two stages, 7x7 and 4x4
maps coded on their 5x5 and 2x2 interiors, dynamic BoW predictor) against BYOL, both with the
"byol" view preset and BYOL's defaults as in ``benchmarks/image_ssl.py``, the main recipe's
encoder, batch, optimiser and step budget (:func:`checks._common.train_image`); only the method
section differs. Both methods see two views per image (OBoW's five extra 96 px patches are left
out so the view budget matches). The paper's claim (ImageNet, ResNet-50, 200 epochs): OBoW's
BoW targets give features at least as good as contrastive and BYOL-style methods. Here the kNN
top-1 on Fashion-MNIST after 400 steps is compared; a random-init encoder scores about 0.70 and
a collapsed one about 0.10.
"""

from __future__ import annotations

from checks._common import train_image  # benchmarks/ is on sys.path (seed_checks.py)

#: Words per BoW level (METHODS.md's small check; paper 8192). With batch 128 the queue holds the
#: teacher's last 2 steps of local features (the paper's 8192 / 256 holds 32). K=1024 (8 steps)
#: measured about 1.5x BYOL's step time on 2 CPU cores, K=256 about BYOL's, and the run budget is CPU.
NUM_WORDS = 256

ROWS = [
    dict(
        key="obow",
        method=f"OBoW (K={NUM_WORDS} per level, levels 7x7+4x4, inv_delta=15, kappa=8)",
        baseline="BYOL",
        data="Fashion-MNIST",
        metric="kNN top-1",
        budget="400 steps x batch 128",
        higher_is_better=True,
        claim="predicting a teacher's bag of visual words learns features competitive with BYOL",
    )
]

VIEWS = "byol"



def run(seed: int, quick: bool = False) -> dict[str, dict[str, float]]:
    ours = train_image({"name": "obow", "num_words": NUM_WORDS}, VIEWS, seed, quick)
    baseline = train_image({"name": "byol"}, VIEWS, seed, quick)
    return {"obow": {"ours": float(ours["knn_top1"]), "baseline": float(baseline["knn_top1"])}}
