"""NoiseCLR: the loss against a loop reference, and noise differences with a stub denoiser."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.functional.noiseclr import noise_differences, noiseclr_loss


def _cos(x, y):
    return float((x @ y) / (x.norm() * y.norm()))


def _loop(deltas, tau, anchors):
    """The official code's ratio of means, one anchor direction at a time."""
    n, k = deltas.shape[:2]
    flat = deltas.reshape(n, k, -1)
    losses = []
    for a in anchors:
        pos = [math.exp(_cos(flat[i, a], flat[j, a]) / tau) for i in range(n) for j in range(i + 1, n)]
        neg = [math.exp(_cos(flat[i, a], flat[i, other]) / tau) for i in range(n) for other in range(k) if other != a]
        losses.append(-math.log((sum(pos) / len(pos)) / (sum(neg) / len(neg))))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("tau,anchors", [(0.5, None), (0.1, [2]), (1.0, [0, 3])])
def test_equals_the_loop_reference(tau, anchors):
    generator = torch.Generator().manual_seed(0)
    deltas = torch.randn(5, 4, 3, 2, 2, generator=generator, dtype=torch.float64)
    got = noiseclr_loss(deltas, tau, anchors=anchors)
    expected = _loop(deltas, tau, range(4) if anchors is None else anchors)
    assert math.isclose(float(got), expected, rel_tol=1e-10)


def test_loss_is_low_when_directions_are_consistent_and_distinct():
    generator = torch.Generator().manual_seed(1)
    basis = torch.linalg.qr(torch.randn(16, 16, generator=generator, dtype=torch.float64)).Q[:, :4].T  # 4 orthogonal
    noise = 0.05 * torch.randn(6, 4, 16, generator=generator, dtype=torch.float64)
    good = basis.unsqueeze(0) + noise  # each direction the same change on every image
    shuffled = torch.randn(6, 4, 16, generator=generator, dtype=torch.float64)
    assert float(noiseclr_loss(good, 0.5)) < float(noiseclr_loss(shuffled, 0.5)) - 1.0


class _StubDenoiser(torch.nn.Module):
    """eps(x, t, c) = tanh(W x) * (1 + t / 1000) + c @ V: conditioning shifts the prediction."""

    def __init__(self, dim=6, cond=3):
        super().__init__()
        generator = torch.Generator().manual_seed(2)
        self.w = torch.nn.Parameter(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
        self.v = torch.nn.Parameter(torch.randn(cond, dim, generator=generator, dtype=torch.float64))
        self.calls = 0

    def forward(self, x, t, c):
        self.calls += 1
        return torch.tanh(x @ self.w.T) * (1 + t.unsqueeze(1) / 1000) + c @ self.v


def test_noise_differences_match_a_loop_and_train_only_the_directions():
    denoiser = _StubDenoiser()
    for p in denoiser.parameters():
        p.requires_grad_(False)
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(4, 6, generator=generator, dtype=torch.float64)
    t = torch.tensor([10, 200, 500, 999])
    directions = torch.randn(3, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    null = torch.zeros(3, dtype=torch.float64)
    deltas = noise_differences(denoiser, x, t, directions, null)
    assert deltas.shape == (4, 3, 6) and denoiser.calls == 2
    for n in range(4):
        for k in range(3):
            expected = denoiser(x[n : n + 1], t[n : n + 1], directions[k : k + 1]) - denoiser(
                x[n : n + 1], t[n : n + 1], null.unsqueeze(0)
            )
            assert torch.allclose(deltas[n, k], expected[0])
    loss = noiseclr_loss(deltas, 0.5)
    loss.backward()
    assert directions.grad is not None and directions.grad.abs().sum() > 0
    assert all(p.grad is None for p in denoiser.parameters())


def test_a_few_steps_on_the_stub_lower_the_loss():
    denoiser = _StubDenoiser()
    for p in denoiser.parameters():
        p.requires_grad_(False)
    generator = torch.Generator().manual_seed(4)
    directions = torch.randn(4, 3, generator=generator, dtype=torch.float64).requires_grad_(True)
    null = torch.zeros(3, dtype=torch.float64)
    x = torch.randn(6, 6, generator=generator, dtype=torch.float64)
    t = torch.tensor(100)
    first = None
    for _ in range(30):
        loss = noiseclr_loss(noise_differences(denoiser, x, t, directions, null), 0.5)
        first = float(loss.detach()) if first is None else first
        (grad,) = torch.autograd.grad(loss, directions)
        with torch.no_grad():  # plain gradient descent (torch.optim's first step imports too much for a unit test)
            directions -= 0.2 * grad
    assert float(loss.detach()) < first


def test_bad_input_raises():
    with pytest.raises(ValueError, match="at least 2 images"):
        noiseclr_loss(torch.randn(1, 3, 4))
    with pytest.raises(ValueError, match="shape"):
        noiseclr_loss(torch.randn(4, 3))
    with pytest.raises(ValueError, match="anchors"):
        noiseclr_loss(torch.randn(3, 3, 4), anchors=[5])
    with pytest.raises(ValueError, match="null_condition"):
        noise_differences(_StubDenoiser(), torch.randn(2, 6), torch.tensor(1), torch.randn(3, 3), torch.zeros(2))
