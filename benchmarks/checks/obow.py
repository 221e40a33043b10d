"""Seed check for OBoW (Gidaris et al., CVPR 2021; METHODS.md #28, FULL).

OBoW (EMA teacher, online vocabularies on the encoder's last two stages, 7x7 and 4x4 maps coded
on their 5x5 and 2x2 interiors, dynamic BoW predictor) against BYOL, both with the "byol" view
preset and BYOL's defaults as in ``benchmarks/image_ssl.py``, the main recipe's encoder, batch,
optimiser and step budget (:func:`checks._common.train_image`); only the method section differs.
As in the official code, the teacher codes the whole image (randomly flipped, nothing else) and
the student predicts that BoW from each of its two strongly augmented views, with the official
logits ``kappa * <G(v_k), f>`` (unit-norm generated weights, raw feature). Both methods see two
views per image (OBoW's five extra 96 px patches are left out so the view budget matches). The
paper's claim (ImageNet, ResNet-50, 200 epochs): OBoW's BoW targets give features at least as
good as contrastive and BYOL-style methods. Here the kNN top-1 on Fashion-MNIST after 400 steps
is compared; a random-init encoder scores about 0.70 and a collapsed one about 0.10.
"""

from __future__ import annotations

from checks._common import train_image  # benchmarks/ is on sys.path (seed_checks.py)

from contrastkit.methods.obow import PAPER_VOCABULARY_STEPS, words_for_batch

#: The recipes' batch (simclr-fashion-mnist.yaml).
BATCH = 128
#: Words per BoW level: the paper's turnover (8192 words at batch 256, i.e. 32 steps of words)
#: at this batch, 32 x 128 = 4096. (The first version of this check used 256 words, 2 steps.)
NUM_WORDS = words_for_batch(BATCH, PAPER_VOCABULARY_STEPS)

ROWS = [
    dict(
        key="obow",
        method=f"OBoW (K={NUM_WORDS} per level = {PAPER_VOCABULARY_STEPS} steps of words, levels 7x7+4x4, "
               "teacher on the flipped whole image, inv_delta=15, kappa=8, raw-feature logits)",
        baseline="BYOL",
        data="Fashion-MNIST",
        metric="kNN top-1",
        budget=f"400 steps x batch {BATCH}",
        higher_is_better=True,
        claim="predicting a teacher's bag of visual words learns features competitive with BYOL",
    )
]

VIEWS = "byol"


def run(seed: int, quick: bool = False) -> dict[str, dict[str, float]]:
    ours = train_image({"name": "obow", "num_words": NUM_WORDS}, VIEWS, seed, quick)
    baseline = train_image({"name": "byol"}, VIEWS, seed, quick)
    return {"obow": {"ours": float(ours["knn_top1"]), "baseline": float(baseline["knn_top1"])}}
