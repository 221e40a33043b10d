"""HaLP: the closed-form t_max against bisection, positives on the k->p great circle on p0's side."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from contrastkit.negatives.halp import (
    halp_alignment_loss,
    halp_positive_logits,
    halp_positives,
    kmeans_prototypes,
    recent_queue_keys,
    slerp_t_max,
)
from contrastkit.negatives.queue import Queue


def _unit(*shape, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=generator, dtype=torch.float64), dim=-1)


def _slerp(k, p, t):
    omega = torch.acos((k * p).sum().clamp(-1, 1))
    return (torch.sin((1 - t) * omega) * k + torch.sin(t * omega) * p) / torch.sin(omega)


def _bisect_t_max(k, p0, p):
    """The largest t in [0, 1] with slerp(k, p, t) . (p0 - p) >= 0, by bisection (the margin falls along the arc)."""
    def margin(t):
        return float(_slerp(k, p, torch.tensor(t, dtype=k.dtype)) @ (p0 - p))

    if margin(1.0) >= 0:
        return 1.0
    low, high = 0.0, 1.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if margin(mid) >= 0 else (low, mid)
    return low


def test_t_max_matches_bisection():
    anchors, protos = _unit(30, 8, seed=1), _unit(6, 8, seed=2)
    checked = 0
    for k in anchors:
        order = (protos @ k).argsort(descending=True)
        p0 = protos[order[0]]
        for j in order[1:]:
            p = protos[j]
            expected = _bisect_t_max(k, p0, p)
            got = float(slerp_t_max(k, p0, p))
            assert abs(got - expected) < 1e-9
            checked += 1
    assert checked == 150


def _target_of(h, k, protos, p0_index):
    """The prototype p (not p0) with h on the k->p arc: h = a k + b p, a, b >= 0."""
    for j in range(protos.shape[0]):
        if j == p0_index:
            continue
        basis = torch.stack([k, protos[j]], dim=1)
        coef = torch.linalg.lstsq(basis, h.unsqueeze(1)).solution.squeeze(1)
        if float((basis @ coef - h).norm()) < 1e-9 and (coef >= -1e-9).all():
            return j
    return None


@pytest.mark.parametrize("hardness", [0.0, 0.2, 1.0])
def test_positives_lie_on_the_arc_to_a_prototype_and_stay_on_the_anchors_side(hardness):
    anchors, protos = _unit(6, 10, seed=3), _unit(7, 10, seed=4)
    out = halp_positives(anchors, protos, num_positives=12, hardness=hardness, generator=torch.Generator().manual_seed(0))
    assert out.shape == (6, 12, 10)
    assert torch.allclose(out.norm(dim=-1), torch.ones(6, 12, dtype=out.dtype))
    for b, k in enumerate(anchors):
        p0_index = int((protos @ k).argmax())
        p0 = protos[p0_index]
        for h in out[b]:
            j = _target_of(h, k, protos, p0_index)
            assert j is not None, "a positive is off every great circle from the anchor to a non-p0 prototype"
            p = protos[j]
            # closer (in cosine) to p0 than to p
            assert float(h @ p0) >= float(h @ p) - 1e-9
            # t <= t_max: the arc from k to h is at most t_max of the arc from k to p
            omega = torch.acos((k @ p).clamp(-1, 1))
            t = torch.acos((k @ h).clamp(-1, 1)) / omega
            t_max = slerp_t_max(k, p0, p)
            assert float(t) <= float(t_max) + 1e-6
            assert float(t) >= hardness * float(t_max) - 1e-6
            if hardness == 1.0:
                assert abs(float(h @ p0) - float(h @ p)) < 1e-6  # on the boundary


def test_harder_setting_moves_positives_further_from_the_anchor():
    anchors, protos = _unit(16, 10, seed=5), _unit(8, 10, seed=6)
    easy = halp_positives(anchors, protos, num_positives=50, hardness=0.0, generator=torch.Generator().manual_seed(1))
    hard = halp_positives(anchors, protos, num_positives=50, hardness=0.9, generator=torch.Generator().manual_seed(1))
    sim_easy = torch.einsum("bd,bgd->bg", anchors, easy).mean()
    sim_hard = torch.einsum("bd,bgd->bg", anchors, hard).mean()
    assert sim_hard < sim_easy < 1


def test_num_targets_restricts_the_target_to_the_nearest_prototypes():
    anchors, protos = _unit(5, 10, seed=7), _unit(9, 10, seed=8)
    out = halp_positives(anchors, protos, num_positives=10, num_targets=1, generator=torch.Generator().manual_seed(2))
    for b, k in enumerate(anchors):
        order = (protos @ k).argsort(descending=True)
        for h in out[b]:
            assert _target_of(h, k, protos, int(order[0])) == int(order[1])


def test_positives_carry_no_gradient_and_are_reproducible():
    anchors = _unit(3, 6, seed=9).requires_grad_(True)
    protos = _unit(4, 6, seed=10)
    a = halp_positives(anchors, protos, num_positives=5, generator=torch.Generator().manual_seed(3))
    b = halp_positives(anchors, protos, num_positives=5, generator=torch.Generator().manual_seed(3))
    assert not a.requires_grad and torch.equal(a, b)


def test_kmeans_recovers_well_separated_clusters():
    centers = _unit(4, 16, seed=11)
    generator = torch.Generator().manual_seed(12)
    points = F.normalize(centers.repeat_interleave(30, 0) + 0.05 * torch.randn(120, 16, generator=generator,
                                                                                 dtype=torch.float64), dim=1)
    protos = kmeans_prototypes(points, 4, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(protos.norm(dim=1), torch.ones(4, dtype=protos.dtype))
    # every true centre has a prototype within a small angle, one each
    match = (centers @ protos.T).argmax(dim=1)
    assert sorted(match.tolist()) == [0, 1, 2, 3]
    assert float((centers @ protos.T).max(dim=1).values.min()) > 0.99


def test_recent_queue_keys_are_the_newest_in_age_order_after_wrapping():
    queue = Queue(size=5, dim=2)
    for value in range(1, 8):  # 7 keys through a queue of 5: keys 3..7 remain
        queue.enqueue(torch.full((1, 2), float(value)))
    assert recent_queue_keys(queue, 3)[:, 0].tolist() == [5.0, 6.0, 7.0]
    assert recent_queue_keys(queue, 10)[:, 0].tolist() == [3.0, 4.0, 5.0, 6.0, 7.0]
    partial = Queue(size=5, dim=2)
    partial.enqueue(torch.tensor([[1.0, 0.0], [2.0, 0.0]]))
    assert recent_queue_keys(partial, 5)[:, 0].tolist() == [1.0, 2.0]


def test_alignment_loss_equals_a_loop_over_good_positives():
    query, anchors, protos = _unit(4, 8, seed=13), _unit(4, 8, seed=14), _unit(5, 8, seed=15)
    query.requires_grad_(True)
    positives = halp_positives(anchors, protos, num_positives=6, hardness=0.5, generator=torch.Generator().manual_seed(4))
    tau = 0.07
    terms = []
    for b in range(4):
        own = int((protos @ anchors[b]).argmax())
        for g in range(6):
            if int((protos @ positives[b, g]).argmax()) == own:
                terms.append(-(query[b] / query[b].norm()) @ positives[b, g] / tau)
    expected = torch.stack(terms).mean()
    got = halp_alignment_loss(query, positives, protos, anchors, temperature=tau)
    assert torch.allclose(got, expected)
    plain = halp_alignment_loss(query, positives, temperature=tau)
    assert torch.allclose(plain, -halp_positive_logits(query, positives, tau).mean())
    got.backward()
    assert query.grad is not None and query.grad.abs().sum() > 0


def test_bad_input_raises():
    anchors, protos = _unit(3, 6), _unit(4, 6, seed=1)
    with pytest.raises(ValueError, match="hardness"):
        halp_positives(anchors, protos, hardness=1.5)
    with pytest.raises(ValueError, match="prototypes"):
        halp_positives(anchors, protos[:1])
    with pytest.raises(ValueError, match="num_prototypes"):
        kmeans_prototypes(anchors, 5)
    with pytest.raises(ValueError, match="positives"):
        halp_positive_logits(anchors, torch.zeros(2, 3, 6, dtype=anchors.dtype))
    with pytest.raises(ValueError, match="empty"):
        recent_queue_keys(Queue(4, 6))
