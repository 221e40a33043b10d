"""Multiple-choice video QA's auxiliary contrast (Kim et al., AAAI 2021) and its token masking."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from contrastkit.functional.mcvqa import mask_tokens, mcvqa_contrastive_loss, mcvqa_loss


def _slow_contrast(anchor, candidates, answers, tau: float, cosine: bool) -> list[float]:
    out = []
    for b in range(anchor.shape[0]):
        scores = []
        for m in range(candidates.shape[1]):
            a, c = anchor[b], candidates[b, m]
            s = float(a @ c) / (float(a.norm() * c.norm()) if cosine else 1.0)
            scores.append(math.exp(s / tau))
        out.append(-math.log(scores[int(answers[b])] / sum(scores)))
    return out


@pytest.mark.parametrize("similarity,tau", [("dot", 1.0), ("cosine", 0.1)])
def test_contrastive_loss_matches_loop_reference(similarity, tau):
    torch.manual_seed(0)
    anchor, candidates = torch.randn(5, 8, dtype=torch.float64), torch.randn(5, 4, 8, dtype=torch.float64)
    answers = torch.tensor([0, 3, 1, 1, 2])
    per = _slow_contrast(anchor, candidates, answers, tau, similarity == "cosine")
    got = mcvqa_contrastive_loss(anchor, candidates, answers, temperature=tau, similarity=similarity, reduction="none")
    assert torch.allclose(got, torch.tensor(per, dtype=torch.float64))
    mean = mcvqa_contrastive_loss(anchor, candidates, answers, temperature=tau, similarity=similarity)
    assert mean.item() == pytest.approx(sum(per) / 5, abs=1e-12)


def test_total_loss_is_answer_ce_plus_weighted_contrast():
    torch.manual_seed(1)
    logits = torch.randn(3, 5, dtype=torch.float64)
    anchor, candidates = torch.randn(3, 6, dtype=torch.float64), torch.randn(3, 5, 6, dtype=torch.float64)
    answers = torch.tensor([4, 0, 2])
    ce = sum(-math.log(math.exp(logits[b, answers[b]]) / float(logits[b].exp().sum())) for b in range(3)) / 3
    contrast = sum(_slow_contrast(anchor, candidates, answers, 1.0, False)) / 3
    got = mcvqa_loss(logits, answers, anchor, candidates, contrastive_weight=0.5)
    assert got.item() == pytest.approx(ce + 0.5 * contrast, abs=1e-12)
    assert mcvqa_loss(logits, answers, anchor, candidates, contrastive_weight=0.0).item() == pytest.approx(ce, abs=1e-12)


def test_gradient_step_pulls_anchor_to_ground_truth_and_away_from_wrong_answers():
    torch.manual_seed(2)
    anchor = torch.randn(8, 16, dtype=torch.float64, requires_grad=True)
    candidates = torch.randn(8, 5, 16, dtype=torch.float64)
    answers = torch.randint(0, 5, (8,))
    loss = mcvqa_contrastive_loss(anchor, candidates, answers, similarity="cosine", temperature=0.2)
    (grad,) = torch.autograd.grad(loss, anchor)
    moved = anchor.detach() - 0.05 * grad

    def margin(a):
        cos = F.cosine_similarity(a[:, None], candidates, dim=-1)
        pos = cos[torch.arange(8), answers]
        neg = cos.masked_fill(F.one_hot(answers, 5).bool(), -2).amax(dim=1)
        return pos - neg

    assert (margin(moved) > margin(anchor.detach())).all()
    assert mcvqa_contrastive_loss(moved, candidates, answers, similarity="cosine", temperature=0.2) < loss


def test_mask_tokens_only_touches_maskable_positions_at_the_given_rate():
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 2000, (64, 128))
    original = ids.clone()
    maskable = torch.zeros_like(ids, dtype=torch.bool)
    maskable[:, 10:100] = True
    noisy, where = mask_tokens(ids, 103, probability=0.15, maskable=maskable, generator=gen)
    assert torch.equal(noisy[where], torch.full_like(noisy[where], 103))
    assert torch.equal(noisy[~where], ids[~where]) and not where[~maskable].any()
    rate = where[maskable].double().mean().item()
    n = int(maskable.sum())
    assert abs(rate - 0.15) < 4 * math.sqrt(0.15 * 0.85 / n)
    assert torch.equal(ids, original)  # the input is not modified in place
    again, _ = mask_tokens(ids, 103, probability=0.15, maskable=maskable, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again, noisy)
    none, where0 = mask_tokens(ids, 103, probability=0.0)
    assert torch.equal(none, ids) and not where0.any()
    full, _ = mask_tokens(ids, 103, probability=1.0, maskable=maskable)
    assert (full[maskable] == 103).all() and torch.equal(full[~maskable], ids[~maskable])


def test_bad_inputs_raise_clear_errors():
    anchor, candidates = torch.randn(2, 4), torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match="answers"):
        mcvqa_contrastive_loss(anchor, candidates, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="candidates"):
        mcvqa_contrastive_loss(anchor, torch.randn(2, 3, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="similarity"):
        mcvqa_contrastive_loss(anchor, candidates, torch.tensor([0, 1]), similarity="l2")
    with pytest.raises(ValueError, match="probability"):
        mask_tokens(torch.tensor([[1, 2]]), 0, probability=1.5)
    with pytest.raises(ValueError, match="input_ids"):
        mask_tokens(torch.tensor([[1.0, 2.0]]), 0)
