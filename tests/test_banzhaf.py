"""HBI's Banzhaf interaction, its Monte-Carlo estimator, the WTI game and the alignment loss."""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch
import torch.nn.functional as F

from contrastkit.functional.banzhaf import (
    banzhaf_alignment_loss,
    banzhaf_estimator_loss,
    banzhaf_interaction_exact,
    banzhaf_interaction_monte_carlo,
    hbi_banzhaf_interaction,
    hbi_loss,
    wti_coalition_value,
    wti_similarity,
)
from contrastkit.nn.banzhaf import BanzhafEstimator


def _quadratic_game(w: torch.Tensor):
    upper = torch.triu(w, 1)
    return lambda c: torch.einsum("ki,ij,kj->k", c.double(), upper, c.double())


def _max_game(sim: torch.Tensor):
    """v(S) = max similarity over the coalition's word x frame cells (0 without a word or a frame)."""
    nt = sim.shape[0]

    def value(c: torch.Tensor) -> torch.Tensor:
        cell = c[:, :nt, None] & c[:, None, nt:]
        best = sim[None].masked_fill(~cell, float("-inf")).flatten(1).amax(dim=1)
        return torch.where(cell.flatten(1).any(dim=1), best, torch.zeros_like(best))

    return value


def _slow_banzhaf(value, n: int, i: int, j: int) -> float:
    """Textbook sum over the subsets of the other players, one coalition at a time."""
    others = [p for p in range(n) if p not in (i, j)]
    total = 0.0
    for r in range(len(others) + 1):
        for subset in itertools.combinations(others, r):
            def v(extra, members=subset):
                c = torch.zeros(1, n, dtype=torch.bool)
                c[0, list(members) + list(extra)] = True
                return float(value(c)[0])
            total += v((i, j)) - v((i,)) - v((j,)) + v(())
    return total / 2 ** len(others)


def test_quadratic_game_interaction_is_its_pair_weight_exactly_and_by_sampling():
    torch.manual_seed(0)
    w = torch.randn(6, 6, dtype=torch.float64)
    pairs = torch.combinations(torch.arange(6), r=2)
    expected = w[pairs[:, 0], pairs[:, 1]]
    assert torch.allclose(banzhaf_interaction_exact(_quadratic_game(w), 6), expected)
    # Every second difference of a quadratic game is w_ij, so even 2 samples are exact.
    assert torch.allclose(banzhaf_interaction_monte_carlo(_quadratic_game(w), 6, num_samples=2), expected)


def test_unanimity_game_matches_closed_form():
    # u_T(S) = 1 iff T ⊆ S: I(i, j) = 2^-(|T|-2) for i, j in T, else 0.
    team = [0, 2, 3, 5]
    value = lambda c: c[:, team].all(dim=1).double()
    got = banzhaf_interaction_exact(value, 7)
    pairs = torch.combinations(torch.arange(7), r=2).tolist()
    expected = torch.tensor([0.25 if i in team and j in team else 0.0 for i, j in pairs], dtype=torch.float64)
    assert torch.allclose(got, expected)


def test_max_game_matches_hand_computation_and_slow_enumeration():
    # One word t, frames f1, f2: I(t, f1) = [s1 + max(s1, s2) - s2] / 2 (C = {} and C = {f2}).
    sim = torch.tensor([[0.3, 0.7]], dtype=torch.float64)
    got = banzhaf_interaction_exact(_max_game(sim), 3, torch.tensor([[0, 1], [0, 2]]))
    assert torch.allclose(got, torch.tensor([(0.3 + 0.7 - 0.7) / 2, (0.7 + 0.7 - 0.3) / 2], dtype=torch.float64))
    torch.manual_seed(1)
    sim = torch.randn(2, 3, dtype=torch.float64)
    value = _max_game(sim)
    exact = banzhaf_interaction_exact(value, 5)
    for row, (i, j) in enumerate(torch.combinations(torch.arange(5), r=2).tolist()):
        assert exact[row].item() == pytest.approx(_slow_banzhaf(value, 5, i, j), abs=1e-12)


def test_monte_carlo_converges_to_exact_on_max_game():
    torch.manual_seed(2)
    sim = torch.rand(3, 4, dtype=torch.float64)
    value = _max_game(sim)
    exact = banzhaf_interaction_exact(value, 7)
    gen = torch.Generator().manual_seed(0)
    coarse = banzhaf_interaction_monte_carlo(value, 7, num_samples=16, generator=gen)
    fine, se = banzhaf_interaction_monte_carlo(
        value, 7, num_samples=4096, generator=gen, return_standard_error=True
    )
    assert ((fine - exact).abs() <= 5 * se + 1e-9).all()
    assert (fine - exact).abs().mean() < 0.3 * (coarse - exact).abs().mean()
    assert (se > 0).any()  # the game is not quadratic: sampling really is random here


def _slow_wti(sim, wt, wv, text_in, video_in) -> float:
    words = [t for t in range(sim.shape[0]) if text_in[t]]
    frames = [f for f in range(sim.shape[1]) if video_in[f]]
    if not words or not frames:
        return 0.0
    w = torch.softmax(wt[words], 0)
    u = torch.softmax(wv[frames], 0)
    t2v = sum(float(w[a]) * max(float(sim[t, f]) for f in frames) for a, t in enumerate(words))
    v2t = sum(float(u[a]) * max(float(sim[t, f]) for t in words) for a, f in enumerate(frames))
    return (t2v + v2t) / 2


def test_wti_similarity_matches_loop_reference_with_padding():
    torch.manual_seed(3)
    text, video = torch.randn(3, 4, 8, dtype=torch.float64), torch.randn(3, 5, 8, dtype=torch.float64)
    wt, wv = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    tm = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [1, 0, 0, 0]], dtype=torch.bool)
    vm = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)
    glob, matched = wti_similarity(text, video, wt, wv, tm, vm)
    tn, vn = F.normalize(text, dim=-1), F.normalize(video, dim=-1)
    for a in range(3):
        for b in range(3):
            expected = _slow_wti(tn[a] @ vn[b].T, wt[a], wv[b], tm[a], vm[b])
            assert glob[a, b].item() == pytest.approx(expected, abs=1e-12)
    assert torch.allclose(matched[1], tn[1] @ vn[1].T)
    # The game on the full coalition is the global similarity of the matched pair.
    full = torch.ones(1, 9, dtype=torch.bool)
    assert torch.allclose(wti_coalition_value(matched, wt, wv, full, tm, vm)[0], glob.diagonal())


def test_hbi_interaction_exact_matches_slow_reference_and_padding_is_dummy():
    torch.manual_seed(4)
    sim = torch.randn(1, 2, 3, dtype=torch.float64)
    wt, wv = torch.randn(1, 2, dtype=torch.float64), torch.randn(1, 3, dtype=torch.float64)
    got = hbi_banzhaf_interaction(sim, wt, wv, num_samples=None)

    def slow_value(c):
        return torch.tensor([_slow_wti(sim[0], wt[0], wv[0], c[0, :2], c[0, 2:])], dtype=torch.float64)

    for t in range(2):
        for f in range(3):
            assert got[0, t, f].item() == pytest.approx(_slow_banzhaf(slow_value, 5, t, 2 + f), abs=1e-12)
    # Padding a word and a frame: their cells are 0 and the real cells do not change.
    padded = torch.zeros(1, 3, 4, dtype=torch.float64)
    padded[0, :2, :3] = sim[0]
    pwt, pwv = torch.cat([wt, torch.randn(1, 1, dtype=torch.float64)], 1), torch.cat([wv, torch.zeros(1, 1, dtype=torch.float64)], 1)
    tm, vm = torch.tensor([[True, True, False]]), torch.tensor([[True, True, True, False]])
    pad = hbi_banzhaf_interaction(padded, pwt, pwv, tm, vm, num_samples=None)
    assert torch.allclose(pad[0, :2, :3], got[0])
    assert pad[0, 2].abs().max() < 1e-12 and pad[0, :, 3].abs().max() < 1e-12
    assert torch.allclose(hbi_banzhaf_interaction(sim, wt, wv, num_samples=None, scale=1000.0), 1000 * got)


def test_hbi_interaction_monte_carlo_close_to_exact():
    torch.manual_seed(5)
    sim = torch.rand(2, 3, 3, dtype=torch.float64)
    wt, wv = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    exact = hbi_banzhaf_interaction(sim, wt, wv, num_samples=None)
    mc = hbi_banzhaf_interaction(sim, wt, wv, num_samples=1500, generator=torch.Generator().manual_seed(1))
    assert (mc - exact).abs().max() < 0.25 * exact.abs().max()
    assert not torch.equal(mc, exact)


def _slow_alignment(pred, target, tm, vm) -> float:
    rows, cols = [], []
    for b in range(pred.shape[0]):
        words, frames = tm[b].nonzero().flatten(), vm[b].nonzero().flatten()
        for t in words:
            p = torch.softmax(target[b, t, frames], 0)
            q = torch.softmax(pred[b, t, frames], 0)
            rows.append(float((p * (p.log() - q.log())).sum()))
        for f in frames:
            p = torch.softmax(target[b, words, f], 0)
            q = torch.softmax(pred[b, words, f], 0)
            cols.append(float((p * (p.log() - q.log())).sum()))
    return sum(rows) / len(rows) + sum(cols) / len(cols)


def test_alignment_loss_paper_and_official_forms():
    torch.manual_seed(6)
    pred = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True)
    target = torch.randn(3, 4, 5, dtype=torch.float64)
    tm = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    vm = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.bool)
    loss = banzhaf_alignment_loss(pred, target, tm, vm)
    assert loss.item() == pytest.approx(_slow_alignment(pred.detach(), target, tm, vm), abs=1e-12)
    loss.backward()
    assert pred.grad[0, 3].abs().max() == 0 and pred.grad[0, :, 4].abs().max() == 0  # padded cells get no gradient
    assert banzhaf_alignment_loss(target, target, tm, vm).item() == pytest.approx(0.0, abs=1e-12)
    # The official until_module.KL with the (deprecated) 3-d .T, i.e. all axes reversed.
    cell = (tm[:, :, None] & vm[:, None, :]).double()
    p, y = pred.detach() * cell, target * cell
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kl = lambda a, b: F.kl_div(F.log_softmax(a, -1), F.softmax(b, -1), reduction="mean")
        official = kl(p, y) + kl(p.permute(2, 1, 0), y.permute(2, 1, 0))
    got = banzhaf_alignment_loss(pred.detach(), target, tm, vm, variant="official")
    assert got.item() == pytest.approx(official.item(), abs=1e-12)


def test_hbi_loss_combines_levels_as_official_forward():
    torch.manual_seed(7)
    sims = [torch.randn(4, 4, dtype=torch.float64) for _ in range(3)]
    preds = [torch.randn(4, 3, 2, dtype=torch.float64) for _ in range(3)]
    targets = [torch.randn(4, 3, 2, dtype=torch.float64) for _ in range(3)]
    t = 50.0

    def ce(x):
        return float(sum(-torch.log_softmax(x[i], 0)[i] for i in range(x.shape[0])) / x.shape[0])

    def kl(a, b):
        return float((torch.softmax(b, -1) * (torch.log_softmax(b, -1) - torch.log_softmax(a, -1))).mean())

    expected = 0.0
    for s, p, y in zip(sims, preds, targets):
        expected += (ce(t * s) + ce(t * s.T)) / 2 + 1.0 * banzhaf_alignment_loss(p, y).item()
    expected += 0.2 * sum(kl(s.T, sims[0].T) + kl(s, sims[0]) for s in sims[1:])
    got = hbi_loss(sims, preds, targets, logit_scale=t)
    assert got.item() == pytest.approx(expected, abs=1e-10)
    single = hbi_loss(sims[:1], preds[:1], targets[:1], logit_scale=t, skl=0.0)
    assert single.item() == pytest.approx((ce(t * sims[0]) + ce(t * sims[0].T)) / 2, abs=1e-10)


def test_estimator_learns_interactions_of_random_wti_games():
    torch.manual_seed(8)
    sim = torch.rand(24, 3, 3) * 2 - 1
    zeros_t, zeros_v = torch.zeros(24, 3), torch.zeros(24, 3)
    target = hbi_banzhaf_interaction(sim, zeros_t, zeros_v, num_samples=None, scale=10.0)
    est = BanzhafEstimator(planes=8)
    params = list(est.parameters())
    m1 = [torch.zeros_like(p) for p in params]
    m2 = [torch.zeros_like(p) for p in params]
    baseline = banzhaf_estimator_loss(torch.zeros_like(target), target).item()
    # A hand-written Adam (lr 2e-2): torch.optim's first use imports torch._dynamo, seconds of test time.
    for step in range(1, 41):
        grads = torch.autograd.grad(banzhaf_estimator_loss(est(sim), target), params)
        with torch.no_grad():
            for p, g, a, b in zip(params, grads, m1, m2):
                a.mul_(0.9).add_(g, alpha=0.1)
                b.mul_(0.999).addcmul_(g, g, value=0.001)
                p.sub_(2e-2 * (a / (1 - 0.9**step)) / ((b / (1 - 0.999**step)).sqrt() + 1e-8))
    assert banzhaf_estimator_loss(est(sim), target).item() < 0.25 * baseline


def test_bad_inputs_raise_clear_errors():
    value = lambda c: c.double().sum(1)
    with pytest.raises(ValueError, match="num_players <= 20"):
        banzhaf_interaction_exact(value, 21)
    with pytest.raises(ValueError, match="pairs"):
        banzhaf_interaction_exact(value, 4, torch.tensor([[0, 0]]))
    with pytest.raises(ValueError, match="variant"):
        banzhaf_alignment_loss(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2), variant="nope")
    with pytest.raises(ValueError, match="value_fn"):
        banzhaf_interaction_exact(lambda c: torch.zeros(()), 3)
