"""Symile (contrastkit.functional.symile) against slow, explicit references."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from contrastkit.functional.contrastive import clip_loss
from contrastkit.functional.symile import (
    multilinear_inner_product,
    pairwise_clip_loss,
    symile_loss,
    symile_zero_shot_scores,
)


def reps(modalities: int, rows: int, dim: int, *, seed: int = 0, normalize: bool = True) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    tensors = [torch.randn(rows, dim, generator=generator, dtype=torch.float64) for _ in range(modalities)]
    return [F.normalize(t, dim=1) for t in tensors] if normalize else tensors


def slow_mip(vectors: list[torch.Tensor]) -> float:
    """sum_d prod_m v_m[d], one float at a time."""
    total = 0.0
    for d in range(vectors[0].shape[0]):
        term = 1.0
        for vector in vectors:
            term *= float(vector[d])
        total += term
    return total


def slow_symile(embeddings, scale: float, negatives: str, generator: torch.Generator | None = None) -> float:
    """Per-row reference: explicit loops over anchors, rows and negatives.

    ``n``: for each anchor (in order), one permutation per partner modality (in order) from
    ``generator``; column j != i takes partner rows perm[j], column i is the positive.
    ``n_squared``: every tuple of partner rows.
    """
    count, rows = len(embeddings), embeddings[0].shape[0]
    anchor_losses = []
    for m in range(count):
        partners = [k for k in range(count) if k != m]
        if negatives == "n":
            perms = [torch.randperm(rows, generator=generator).tolist() for _ in partners]
        row_losses = []
        for i in range(rows):
            anchor = embeddings[m][i]
            positive = slow_mip([anchor] + [embeddings[k][i] for k in partners])
            if negatives == "n":
                scores = []
                for j in range(rows):
                    if j == i:
                        scores.append(positive)
                    else:
                        tuple_rows = [embeddings[k][perm[j]] for k, perm in zip(partners, perms)]
                        scores.append(slow_mip([anchor] + tuple_rows))
            else:
                scores = [
                    slow_mip([anchor] + [embeddings[k][j] for k, j in zip(partners, combo)])
                    for combo in itertools.product(range(rows), repeat=len(partners))
                ]
            top = max(scale * s for s in scores)
            log_norm = top + math.log(sum(math.exp(scale * s - top) for s in scores))
            row_losses.append(log_norm - scale * positive)
        anchor_losses.append(sum(row_losses) / rows)
    return sum(anchor_losses) / count


def test_mip_matches_explicit_loop():
    a, b, c = reps(3, 5, 7, normalize=False)
    mip = multilinear_inner_product(a, b, c)
    assert mip.shape == (5,)
    expected = torch.tensor([slow_mip([a[i], b[i], c[i]]) for i in range(5)], dtype=torch.float64)
    torch.testing.assert_close(mip, expected)
    # two inputs: the row-wise dot product
    torch.testing.assert_close(multilinear_inner_product(a, b), (a * b).sum(1))


@pytest.mark.parametrize("negatives", ["n", "n_squared"])
def test_symile_matches_slow_reference_three_modalities(negatives):
    embeddings = reps(3, 5, 4, seed=1)
    scale = 3.0
    loss = symile_loss(embeddings, scale, negatives=negatives, generator=torch.Generator().manual_seed(7))
    expected = slow_symile(embeddings, scale, negatives, torch.Generator().manual_seed(7))
    assert loss.dtype == torch.float64
    assert float(loss) == pytest.approx(expected, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize(("negatives", "count", "rows"), [("n", 4, 5), ("n_squared", 4, 3), ("n", 2, 6)])
def test_symile_matches_slow_reference_other_counts(negatives, count, rows):
    embeddings = reps(count, rows, 3, seed=2)
    loss = symile_loss(embeddings, 2.0, negatives=negatives, generator=torch.Generator().manual_seed(3))
    expected = slow_symile(embeddings, 2.0, negatives, torch.Generator().manual_seed(3))
    assert float(loss) == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_n_squared_with_two_modalities_is_clip():
    a, b = reps(2, 6, 5, seed=4)
    torch.testing.assert_close(symile_loss([a, b], 4.0, negatives="n_squared"), clip_loss(a, b, 4.0, chunk_size=None))


def test_n_sampling_is_reproducible_with_a_generator_and_depends_on_it():
    embeddings = reps(3, 16, 8, seed=5)
    first = symile_loss(embeddings, 5.0, generator=torch.Generator().manual_seed(11))
    again = symile_loss(embeddings, 5.0, generator=torch.Generator().manual_seed(11))
    other = symile_loss(embeddings, 5.0, generator=torch.Generator().manual_seed(12))
    assert float(first) == float(again)
    assert float(first) != float(other)


@pytest.mark.parametrize("negatives", ["n", "n_squared"])
def test_gradient_reaches_every_input_and_the_scale(negatives):
    embeddings = [t.clone().requires_grad_(True) for t in reps(3, 6, 4, seed=6)]
    scale = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    symile_loss(embeddings, scale, negatives=negatives, generator=torch.Generator().manual_seed(0)).backward()
    for tensor in [*embeddings, scale]:
        assert tensor.grad is not None
        assert torch.isfinite(tensor.grad).all()
        assert tensor.grad.abs().sum() > 0


def one_hot_tuples(rows: int) -> list[torch.Tensor]:
    """Tuple i is (e_i, e_i, e_i): positive MIP 1, any tuple with another row 0."""
    eye = torch.eye(rows, dtype=torch.float64)
    return [eye.clone(), eye.clone(), eye.clone()]


def test_aligned_tuples_give_near_zero_loss_and_misaligned_do_not():
    aligned = one_hot_tuples(64)
    scale = 50.0
    # n_squared: every negative has MIP 0, so L = log(1 + (B^2 - 1) e^-50)
    assert float(symile_loss(aligned, scale, negatives="n_squared")) < 1e-12
    # n: a shuffled tuple may by chance be the positive (the official sampling), which costs
    # log 2 for that row; about one per anchor in expectation, so the mean stays small.
    assert float(symile_loss(aligned, scale, negatives="n", generator=torch.Generator().manual_seed(0))) < 0.05
    # the control: break the tuples (shift one modality's rows) and the same loss is large
    broken = [aligned[0], aligned[1], aligned[2].roll(1, dims=0)]
    assert float(symile_loss(broken, scale, negatives="n_squared")) > 10.0


def test_pairwise_clip_loss_is_the_mean_over_pairs():
    for count in (2, 3, 4):
        embeddings = reps(count, 8, 6, seed=count, normalize=False)
        pairs = [clip_loss(a, b, 3.0) for a, b in itertools.combinations(embeddings, 2)]
        torch.testing.assert_close(pairwise_clip_loss(embeddings, 3.0), sum(pairs) / len(pairs))


def test_zero_shot_scores_match_explicit_loop():
    r_a, r_b = reps(2, 4, 5, seed=8)
    candidates = reps(1, 3, 5, seed=9)[0]
    scores = symile_zero_shot_scores([r_a, r_b], candidates)
    assert scores.shape == (4, 3)
    for b in range(4):
        for c in range(3):
            assert float(scores[b, c]) == pytest.approx(slow_mip([r_a[b], r_b[b], candidates[c]]), rel=1e-12)


def error_line(call) -> str:
    with pytest.raises(ValueError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_errors_are_one_clear_line():
    a, b, c = reps(3, 5, 4)
    generator = torch.Generator().manual_seed(0)
    assert "embeddings[2]: expected the same number of rows as embeddings[0] (5" in error_line(
        lambda: symile_loss([a, b, c[:4]], 1.0, generator=generator)
    )
    assert "embeddings[1]: expected feature size D=4" in error_line(
        lambda: symile_loss([a, b[:, :3], c], 1.0, generator=generator)
    )
    assert "embeddings: expected at least 2 modalities" in error_line(lambda: symile_loss([a], 1.0))
    assert "embeddings: expected a sequence" in error_line(lambda: symile_loss(torch.stack([a, b]), 1.0))
    assert "negatives: expected one of 'n', 'n_squared', got 'n2'" in error_line(
        lambda: symile_loss([a, b, c], 1.0, negatives="n2")
    )
    assert "logit_scale: expected a finite value > 0, got 0.0" in error_line(lambda: symile_loss([a, b, c], 0.0))
    assert "logit_scale: expected a finite value > 0, got -1.0" in error_line(lambda: pairwise_clip_loss([a, b], -1.0))
    assert "embeddings[0]: expected at least 2 rows" in error_line(lambda: symile_loss([a[:1], b[:1]], 1.0))
    assert "generator: expected a torch.Generator" in error_line(lambda: symile_loss([a, b], 1.0, generator=0))
    assert "embeddings: expected at least 2 modalities" in error_line(lambda: multilinear_inner_product(a))
    assert "separate arguments" in error_line(lambda: multilinear_inner_product([a, b]))
    assert "candidates: expected feature size D=4" in error_line(
        lambda: symile_zero_shot_scores([a, b], torch.randn(2, 3, dtype=torch.float64))
    )
    assert "query_parts: expected at least 1 modality" in error_line(lambda: symile_zero_shot_scores([], a))
