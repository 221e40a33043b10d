"""DirectPredictor: running correlation and W by hand (numpy), spectrum, alignment, no gradient, freq, bf16, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contrastkit.nn.direct_predictor import DirectPredictor, direct_predictor_weight


def _features(steps: int, n: int = 32, d: int = 6, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(d, d, generator=g)
    return [torch.randn(n, d, generator=g) @ mixing + 0.5 for _ in range(steps)]


def numpy_reference(batches: list[np.ndarray], rho: float, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """F by the paper's recursion (first batch copied, as the official accumulator), then W = U diag(p) U^T."""
    corr = None
    for f in batches:
        batch_corr = sum(np.outer(row, row) for row in f) / len(f)
        corr = batch_corr if corr is None else rho * corr + (1 - rho) * batch_corr
    values, vectors = np.linalg.eigh(corr)
    values = np.clip(values, 0, None)
    p = np.sqrt(values / values.max()) + eps
    weight = sum(p[j] * np.outer(vectors[:, j], vectors[:, j]) for j in range(len(p)))
    return corr, weight


def test_running_correlation_and_weight_match_a_hand_computation():
    batches = _features(5)
    predictor = DirectPredictor(6, rho=0.3, eps=0.01)
    for f in batches:
        predictor.update(f)
    corr, weight = numpy_reference([f.double().numpy() for f in batches], rho=0.3, eps=0.01)
    np.testing.assert_allclose(predictor.correlation.numpy(), corr, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(predictor.weight.numpy(), weight, rtol=1e-4, atol=1e-5)
    assert int(predictor.num_updates) == 5
    # rho matters: another decay gives another F.
    other, _ = numpy_reference([f.double().numpy() for f in batches], rho=0.9, eps=0.01)
    assert not np.allclose(predictor.correlation.numpy(), other, atol=1e-2)


def test_weight_is_symmetric_psd_with_eigenvalues_in_eps_one_plus_eps():
    predictor = DirectPredictor(6, eps=0.05)
    for f in _features(3, seed=1):
        predictor.update(f)
    weight = predictor.weight.double()
    assert torch.allclose(weight, weight.T, atol=1e-6)
    values = torch.linalg.eigvalsh(weight)
    assert values.min() >= 0.05 - 1e-5 and values.max() <= 1.05 + 1e-5
    assert values.max() == pytest.approx(1.05, abs=1e-5)  # the top direction gets sqrt(1) + eps


def test_weight_eigenvectors_align_with_the_correlation():
    predictor = DirectPredictor(6)
    for f in _features(4, seed=2):
        predictor.update(f)
    corr, weight = predictor.correlation.double(), predictor.weight.double()
    # Same eigenvectors <=> the matrices commute; and F's eigenbasis diagonalises W, in order.
    assert torch.allclose(weight @ corr, corr @ weight, atol=1e-4 * corr.abs().max())
    s, u = torch.linalg.eigh(corr)
    in_f_basis = u.T @ weight @ u
    off = in_f_basis - torch.diag(torch.diagonal(in_f_basis))
    assert off.abs().max() < 1e-4
    expected = torch.sqrt(s.clamp(min=0) / s.max()) + 0.01
    assert torch.allclose(torch.diagonal(in_f_basis), expected, atol=1e-4)


def test_no_gradient_reaches_w_but_the_input_gets_w():
    predictor = DirectPredictor(6)
    predictor.update(_features(1)[0])
    assert list(predictor.parameters()) == []
    z = torch.randn(4, 6, requires_grad=True)
    out = predictor(z)
    upstream = torch.randn(4, 6)
    out.backward(upstream)
    assert not predictor.weight.requires_grad and predictor.weight.grad is None
    assert torch.allclose(z.grad, upstream @ predictor.weight.T, atol=1e-6)
    assert torch.allclose(out, z.detach() @ predictor.weight, atol=1e-6)


def test_freq_recomputes_w_only_every_freq_updates():
    predictor = DirectPredictor(6, freq=3)
    weights = []
    for f in _features(7, seed=3):
        predictor.update(f)
        weights.append(predictor.weight.clone())
    # Recomputed on updates 1, 4, 7; kept in between.
    assert torch.equal(weights[0], weights[1]) and torch.equal(weights[1], weights[2])
    assert not torch.equal(weights[2], weights[3])
    assert torch.equal(weights[3], weights[4]) and torch.equal(weights[4], weights[5])
    assert not torch.equal(weights[5], weights[6])
    assert torch.allclose(weights[6], direct_predictor_weight(predictor.correlation, 0.01))


def test_identity_before_the_first_update_and_state_dict_round_trip():
    predictor = DirectPredictor(6)
    assert torch.equal(predictor.weight, torch.eye(6))
    for f in _features(2, seed=4):
        predictor.update(f)
    state = predictor.state_dict()
    assert set(state) == {"correlation", "weight", "num_updates"}
    restored = DirectPredictor(6)
    restored.load_state_dict(state)
    next_batch = _features(1, seed=5)[0]
    predictor.update(next_batch)
    restored.update(next_batch)
    assert torch.equal(restored.weight, predictor.weight) and int(restored.num_updates) == 3


def test_bf16_autocast_keeps_the_statistics_in_float32():
    batches = _features(3, seed=6)
    plain, autocast = DirectPredictor(6), DirectPredictor(6)
    for f in batches:
        plain.update(f)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast.update(f)
            out = autocast(f)
    assert autocast.correlation.dtype == torch.float32 and autocast.weight.dtype == torch.float32
    assert torch.allclose(autocast.correlation, plain.correlation, rtol=1e-5, atol=1e-5)
    assert torch.allclose(autocast.weight, plain.weight, rtol=1e-4, atol=1e-5)
    assert out.shape == (32, 6) and torch.isfinite(out.float()).all()


def test_dead_features_give_eps_identity_on_their_directions():
    # Only the first two coordinates vary: W is U diag(...) U^T with eps on the dead directions.
    g = torch.Generator().manual_seed(7)
    f = torch.zeros(16, 4)
    f[:, :2] = torch.randn(16, 2, generator=g)
    predictor = DirectPredictor(4, eps=0.1)
    predictor.update(f)
    assert torch.allclose(predictor.weight[2:, 2:], 0.1 * torch.eye(2), atol=1e-5)
    assert torch.allclose(direct_predictor_weight(torch.zeros(3, 3), 0.1), 0.1 * torch.eye(3))


def test_errors():
    with pytest.raises(ValueError, match="rho"):
        DirectPredictor(4, rho=1.0)
    with pytest.raises(ValueError, match="eps"):
        DirectPredictor(4, eps=-0.1)
    with pytest.raises(ValueError, match="freq"):
        DirectPredictor(4, freq=0)
    with pytest.raises(ValueError, match="dim"):
        DirectPredictor(0)
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        DirectPredictor(4).update(torch.randn(8, 5))
    with pytest.raises(ValueError, match="finite"):
        DirectPredictor(2).update(torch.tensor([[float("nan"), 1.0]]))
    with pytest.raises(ValueError, match="square"):
        direct_predictor_weight(torch.randn(3, 4))
