"""The fused one-positive-per-row loss equals a naive per-row reference, value and gradients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from contrastkit.functional import paired
from contrastkit.functional.paired import paired_contrastive_loss


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TOL = {"rtol": 1e-10, "atol": 1e-10}


def _leaf(*shape: int, seed: int, norm: float | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    if norm is not None:
        x = x / x.norm(dim=1, keepdim=True) * norm
    return x.requires_grad_(True)


def _reference(q: torch.Tensor, k: torch.Tensor, scale: torch.Tensor, partner: torch.Tensor, exclude: torch.Tensor | None) -> torch.Tensor:
    """Row by row: logsumexp over the kept columns minus the positive logit."""
    losses = []
    for i in range(q.shape[0]):
        logits = scale * (k @ q[i])
        if exclude is not None and int(exclude[i]) >= 0:
            keep = torch.ones(k.shape[0], dtype=torch.bool)
            keep[int(exclude[i])] = False
            denominator = torch.logsumexp(logits[keep], dim=0)
        else:
            denominator = torch.logsumexp(logits, dim=0)
        losses.append(denominator - logits[int(partner[i])])
    return torch.stack(losses)


def _check(q: torch.Tensor, k: torch.Tensor, scale: torch.Tensor, partner: torch.Tensor, exclude: torch.Tensor | None, chunk: int | str) -> None:
    row_weights = torch.rand(q.shape[0], generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    inputs = [q, k, scale]
    expected = _reference(q, k, scale, partner, exclude)
    expected_grads = torch.autograd.grad((expected * row_weights).sum(), inputs)
    got = paired_contrastive_loss(q, k, scale, partner, exclude=exclude, chunk_size=chunk)
    got_grads = torch.autograd.grad((got * row_weights).sum(), inputs)
    torch.testing.assert_close(got, expected.detach(), **TOL)
    for g_got, g_expected in zip(got_grads, expected_grads):
        torch.testing.assert_close(g_got, g_expected, **TOL)


@pytest.mark.parametrize("chunk", ["auto", 8, 1, 64])
@pytest.mark.parametrize("with_exclude", [False, True])
@pytest.mark.parametrize("scale_value", [5.0, 60.0])  # cosine logits: static shift (2 * 5 <= 80) / streaming max
def test_matches_reference(chunk: int | str, with_exclude: bool, scale_value: float) -> None:
    rows, cols = 21, 29  # ragged tiles of 8; more columns than rows (extra negatives)
    q, k = _leaf(rows, 5, seed=0, norm=1.0), _leaf(cols, 5, seed=1, norm=1.0)
    scale = torch.tensor(scale_value, dtype=torch.float64, requires_grad=True)
    partner = torch.randperm(cols, generator=torch.Generator().manual_seed(2))[:rows]
    exclude = (partner + 1) % cols if with_exclude else None
    if with_exclude:
        exclude[3] = -1  # a row with nothing excluded
    _check(q, k, scale, partner, exclude, chunk)


def test_large_unnormalised_logits_stay_finite() -> None:
    """Logits of several hundred: the streaming max must keep exp from overflowing."""
    q, k = _leaf(12, 4, seed=3, norm=30.0), _leaf(12, 4, seed=4, norm=30.0)
    scale = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    for chunk in ("auto", 5):
        _check(q, k, scale, torch.arange(12), torch.roll(torch.arange(12), 1), chunk)


def test_static_shift_is_used_only_when_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the safety margin forced to 0 every call must take the streaming path and still agree."""
    q, k = _leaf(10, 4, seed=5, norm=1.0), _leaf(10, 4, seed=6, norm=1.0)
    scale = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    monkeypatch.setattr(paired, "_SAFE_EXP_RANGE", 0.0)
    _check(q, k, scale, torch.arange(10), None, "auto")


def test_cached_and_tiled_agree_and_backward_can_repeat() -> None:
    q, k = _leaf(16, 8, seed=7, norm=1.0), _leaf(16, 8, seed=8, norm=1.0)
    results = []
    for chunk in ("auto", 4):
        loss = paired_contrastive_loss(q, k, 10.0, torch.arange(16), chunk_size=chunk).mean()
        first = torch.autograd.grad(loss, [q, k], retain_graph=True)
        second = torch.autograd.grad(loss, [q, k])
        for a, b in zip(first, second):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        results.append((loss.detach(), first))
    torch.testing.assert_close(results[0][0], results[1][0], **TOL)
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, **TOL)


def test_bfloat16_inputs_are_upcast() -> None:
    q32, k32 = _leaf(8, 4, seed=9, norm=1.0).detach().float(), _leaf(8, 4, seed=10, norm=1.0).detach().float()
    q16, k16 = q32.bfloat16().requires_grad_(True), k32.bfloat16().requires_grad_(True)
    loss = paired_contrastive_loss(q16, k16, 10.0, torch.arange(8))
    assert loss.dtype == torch.float32
    loss.sum().backward()
    assert q16.grad is not None and q16.grad.dtype == torch.bfloat16
    reference = paired_contrastive_loss(q16.detach().float(), k16.detach().float(), 10.0, torch.arange(8))
    torch.testing.assert_close(loss.detach(), reference)


def test_bad_input() -> None:
    q, k = torch.randn(4, 3), torch.randn(6, 3)
    with pytest.raises(ValueError, match=r"partner: expected an integer tensor of shape \[4\]"):
        paired_contrastive_loss(q, k, 1.0, torch.arange(5))
    with pytest.raises(ValueError, match=r"partner: expected column indices in \[0, 6\)"):
        paired_contrastive_loss(q, k, 1.0, torch.tensor([0, 1, 2, 6]))
    with pytest.raises(ValueError, match="must not be its positive"):
        paired_contrastive_loss(q, k, 1.0, torch.arange(4), exclude=torch.tensor([0, -1, -1, -1]))
    with pytest.raises(ValueError, match="chunk_size"):
        paired_contrastive_loss(q, k, 1.0, torch.arange(4), chunk_size=0)
    with pytest.raises(ValueError, match=r"expected query \[B, D\] and key \[N, D\]"):
        paired_contrastive_loss(q, torch.randn(6, 2), 1.0, torch.arange(4))


@pytest.mark.parametrize("chunk", ["auto", 16])
@pytest.mark.parametrize("scale_value", [20.0, 60.0])  # static shift / streaming max
def test_near_zero_loss_is_never_negative_and_accurate(chunk: int | str, scale_value: float) -> None:
    """Keys equal to their queries in a wide space: every loss is ~N exp(-scale) > 0.

    A cross-entropy is >= 0; the kernel must not fall below 0 by rounding (a positive
    logit taken from a dot product apart from the GEMM did, by ~1e-6 at scale 20), and
    must match a float64 reference to float32 precision of the value itself.
    """
    g = torch.Generator().manual_seed(3)
    q = torch.nn.functional.normalize(torch.randn(48, 768, generator=g), dim=1)
    k = q + 1e-4 * torch.randn(48, 768, generator=g)
    k = torch.nn.functional.normalize(k, dim=1)
    partner = torch.arange(48)
    got = paired_contrastive_loss(q, k, scale_value, partner, chunk_size=chunk)
    expected = _reference(q.double(), k.double(), torch.tensor(scale_value, dtype=torch.float64), partner, None)
    assert bool((got >= 0).all()), f"negative losses: {got[got < 0].tolist()}"
    torch.testing.assert_close(got.double(), expected, rtol=1e-3, atol=1e-12)
