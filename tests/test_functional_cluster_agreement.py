"""Swapped prototype prediction (Sinkhorn codes), 3D cluster agreement and masked slice prediction."""

import math

import pytest
import torch

from contrastkit.functional.cluster_agreement import (
    cluster_agreement_loss,
    mask_slice_embeddings,
    masked_embedding_prediction_loss,
    prototype_scores,
    sinkhorn_knopp,
    swapped_prediction_loss,
)


def test_sinkhorn_codes_have_equal_prototype_marginals():
    generator = torch.Generator().manual_seed(0)
    # skewed scores: most samples prefer prototype 0; equipartition must still spread them
    scores = torch.randn(40, 8, generator=generator) * 0.1
    scores[:, 0] += 0.2
    codes = sinkhorn_knopp(scores, epsilon=0.05, iterations=200)
    torch.testing.assert_close(codes.sum(dim=1), torch.ones(40))
    torch.testing.assert_close(codes.sum(dim=0), torch.full((8,), 40 / 8), atol=1e-4, rtol=0)
    # without equipartition (plain softmax) prototype 0 takes far more than its share
    assert float(torch.softmax(scores / 0.05, dim=1)[:, 0].sum()) > 2 * 40 / 8


def test_sinkhorn_matches_loop_reference():
    generator = torch.Generator().manual_seed(1)
    scores = torch.randn(5, 3, generator=generator, dtype=torch.float64)
    q = [[math.exp(float(scores[b, k]) / 0.5) for b in range(5)] for k in range(3)]
    total = sum(map(sum, q))
    q = [[v / total for v in row] for row in q]
    for _ in range(3):
        q = [[v / sum(row) / 3 for v in row] for row in q]
        columns = [sum(q[k][b] for k in range(3)) for b in range(5)]
        q = [[q[k][b] / columns[b] / 5 for b in range(5)] for k in range(3)]
    expected = torch.tensor([[q[k][b] * 5 for k in range(3)] for b in range(5)], dtype=torch.float64)
    torch.testing.assert_close(sinkhorn_knopp(scores, epsilon=0.5, iterations=3), expected)


def test_swapped_prediction_matches_loop():
    generator = torch.Generator().manual_seed(2)
    a, b = torch.randn(2, 6, 4, generator=generator, dtype=torch.float64)
    qa, qb = sinkhorn_knopp(a), sinkhorn_knopp(b)

    def cross(q, s):
        total = 0.0
        for i in range(6):
            lse = math.log(sum(math.exp(float(s[i, k]) / 0.1) for k in range(4)))
            total += -sum(float(q[i, k]) * (float(s[i, k]) / 0.1 - lse) for k in range(4))
        return total / 6

    expected = (cross(qa, b) + cross(qb, a)) / 2
    assert swapped_prediction_loss(a, b).item() == pytest.approx(expected)


def test_codes_carry_no_gradient_and_three_view_agreement():
    generator = torch.Generator().manual_seed(3)
    scores = torch.randn(3, 8, 5, generator=generator, dtype=torch.float64, requires_grad=True)
    loss = cluster_agreement_loss(scores)
    views = scores.detach().unbind(0)
    expected = 0.0
    for v in range(3):
        codes = sinkhorn_knopp(views[v])
        expected += sum(
            -(codes * torch.log_softmax(views[w] / 0.1, dim=1)).sum(1).mean() for w in range(3) if w != v
        ) / 2
    assert loss.item() == pytest.approx(float(expected / 3))
    # code_views restricts the targets to the listed views
    only_first = cluster_agreement_loss(scores, code_views=[0])
    codes = sinkhorn_knopp(views[0])
    manual = sum(-(codes * torch.log_softmax(views[w] / 0.1, dim=1)).sum(1).mean() for w in (1, 2)) / 2
    assert only_first.item() == pytest.approx(float(manual))


def test_agreement_training_clusters_volumes_by_content():
    """Volume embeddings of two augmented copies learn to land on the same prototype."""
    torch.manual_seed(0)  # the encoder's initialisation
    generator = torch.Generator().manual_seed(4)
    n = 128
    volumes = torch.randn(n, 12, generator=generator)
    encoder = torch.nn.Linear(12, 8)
    prototypes = torch.nn.Parameter(torch.randn(6, 8, generator=generator))
    optimizer = torch.optim.Adam(list(encoder.parameters()) + [prototypes], lr=0.05)

    def view():
        return encoder(volumes + 0.3 * torch.randn(n, 12, generator=generator))

    def agreement():
        with torch.no_grad():
            same, used = 0.0, set()
            for _ in range(5):
                a, b = (prototype_scores(view(), prototypes).argmax(1) for _ in range(2))
                same += float((a == b).float().mean()) / 5
                used |= set(a.tolist())
            return same, len(used)

    before, _ = agreement()
    for _ in range(150):
        loss = swapped_prediction_loss(*(prototype_scores(view(), prototypes) for _ in range(2)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after, used = agreement()
    assert after > before + 0.1 and after > 0.85  # measured 0.76 -> 0.90 (seed 0)
    assert used >= 4  # equipartition prevents collapse onto one prototype


def test_bert_masking_ratios_and_selection():
    generator = torch.Generator().manual_seed(5)
    slices = torch.randn(64, 50, 4, generator=generator)
    token = torch.full((4,), 7.0)
    masked, selected = mask_slice_embeddings(slices, token, mask_ratio=0.3, generator=generator)
    assert abs(float(selected.float().mean()) - 0.3) < 0.03
    assert torch.equal(masked[~selected], slices[~selected])
    is_token = (masked == 7.0).all(dim=-1)
    assert not bool(is_token[~selected].any())
    changed = selected & ~is_token & ~(masked == slices).all(dim=-1)
    unchanged = selected & (masked == slices).all(dim=-1)
    count = int(selected.sum())
    assert abs(int(is_token.sum()) / count - 0.8) < 0.05
    assert abs(int(changed.sum()) / count - 0.1) < 0.04
    assert abs(int(unchanged.sum()) / count - 0.1) < 0.04
    # every volume has at least one masked slice, even at a tiny ratio
    _, few = mask_slice_embeddings(slices, token, mask_ratio=0.0, generator=generator)
    assert bool((few.sum(dim=1) == 1).all())


def test_masked_prediction_ignores_unmasked_positions():
    generator = torch.Generator().manual_seed(6)
    prediction = torch.randn(2, 5, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    target = torch.randn(2, 5, 3, generator=generator, dtype=torch.float64)
    mask = torch.tensor([[True, False, False, True, False], [False, False, True, False, False]])
    loss = masked_embedding_prediction_loss(prediction, target, mask)
    p = prediction.detach()
    expected = sum(float((p[b, s] - target[b, s]).pow(2).sum()) for b, s in mask.nonzero().tolist()) / 9
    assert loss.item() == pytest.approx(expected)
    loss.backward()
    assert bool((prediction.grad[~mask] == 0).all()) and bool((prediction.grad[mask] != 0).any())
    changed = prediction.detach().clone()
    changed[~mask] = 1e3
    assert masked_embedding_prediction_loss(changed, target, mask).item() == pytest.approx(expected)
    cosine = masked_embedding_prediction_loss(prediction, target, mask, kind="cosine")
    expected_cos = [1 - float(torch.nn.functional.cosine_similarity(p[b, s], target[b, s], dim=0))
                    for b, s in mask.nonzero().tolist()]
    assert cosine.item() == pytest.approx(sum(expected_cos) / 3)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="at least 2 views"):
        cluster_agreement_loss([torch.randn(4, 3)])
    with pytest.raises(ValueError, match="mask_token"):
        mask_slice_embeddings(torch.randn(2, 3, 4), torch.zeros(3))
    with pytest.raises(ValueError, match="kind"):
        masked_embedding_prediction_loss(torch.randn(1, 2, 3), torch.randn(1, 2, 3), torch.ones(1, 2), kind="l1")
    with pytest.raises(ValueError, match="iterations"):
        sinkhorn_knopp(torch.randn(3, 2), iterations=0)
