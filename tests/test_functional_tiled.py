"""The tiled (block-wise) InfoNCE-family path equals the naive one, value and gradients."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch

from contrastkit import functional as CF
from contrastkit.functional import tiled


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Small blocks run faster on one thread (and OpenMP spin-waits badly on a shared, loaded machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TOL = {"rtol": 1e-10, "atol": 1e-10}
B, M, K, D, CHUNK = 37, 37, 11, 6, 8  # ragged blocks: 37 = 4 * 8 + 5


def _leaf(*shape: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_(True)


def _compare(fn: Callable[[object], torch.Tensor], inputs: list[torch.Tensor], chunk: int = CHUNK) -> None:
    """``fn(chunk_size)`` with chunk ``None`` (naive) vs ``chunk`` (tiled): value and every gradient."""
    results = []
    for chunk_size in (None, chunk):
        loss = fn(chunk_size)
        grads = torch.autograd.grad(loss.sum(), inputs)
        results.append((loss.detach(), grads))
    (naive, naive_grads), (tiled_loss, tiled_grads) = results
    torch.testing.assert_close(tiled_loss, naive, **TOL)
    for g_naive, g_tiled in zip(naive_grads, tiled_grads):
        torch.testing.assert_close(g_tiled, g_naive, **TOL)


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_info_nce_paired(symmetric: bool, reduction: str) -> None:
    q, k, t = _leaf(B, D, seed=0), _leaf(M, D, seed=1), torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    _compare(
        lambda c: CF.info_nce(q, k, temperature=t, symmetric=symmetric, reduction=reduction, chunk_size=c), [q, k, t]
    )


def test_info_nce_negatives_and_float_temperature() -> None:
    q, k, n = _leaf(B, D, seed=2), _leaf(M, D, seed=3), _leaf(K, D, seed=4)
    _compare(lambda c: CF.info_nce(q, k, negatives=n, temperature=0.07, chunk_size=c), [q, k, n])


def test_info_nce_one_element_temperature_unnormalised() -> None:
    q, k, n = _leaf(B, D, seed=5), _leaf(M, D, seed=6), _leaf(K, D, seed=7)
    t = torch.tensor([3.0], dtype=torch.float64, requires_grad=True)
    _compare(lambda c: CF.info_nce(q, k, negatives=n, temperature=t, normalize=False, chunk_size=c), [q, k, n, t])


@pytest.mark.parametrize("symmetric", [False, True])
def test_info_nce_labels(symmetric: bool) -> None:
    q, k, t = _leaf(B, D, seed=8), _leaf(M, D, seed=9), torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 5, (B,), generator=torch.Generator().manual_seed(0))
    _compare(lambda c: CF.info_nce(q, k, temperature=t, labels=labels, symmetric=symmetric, chunk_size=c), [q, k, t])


def test_info_nce_labels_with_negatives() -> None:
    q, k, n = _leaf(B, D, seed=10), _leaf(M, D, seed=11), _leaf(K, D, seed=12)
    labels = torch.randint(0, 5, (B,), generator=torch.Generator().manual_seed(1))
    _compare(lambda c: CF.info_nce(q, k, negatives=n, labels=labels, chunk_size=c), [q, k, n])


def _pos_mask(rows: int, cols: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(rows, cols, generator=g) < 0.15
    mask[torch.arange(rows), torch.arange(rows) % cols] = True  # at least one positive per row (and column)
    if dtype == torch.bool:
        return mask
    return mask.to(dtype) * torch.rand(rows, cols, generator=g, dtype=dtype).add(0.5)


@pytest.mark.parametrize("dtype", [torch.bool, torch.float64])
@pytest.mark.parametrize("symmetric", [False, True])
def test_info_nce_pos_mask_unpaired(dtype: torch.dtype, symmetric: bool) -> None:
    keys = 29  # unpaired: M != B
    q, k = _leaf(B, D, seed=13), _leaf(keys, D, seed=14)
    mask = _pos_mask(B, keys, dtype, seed=2)
    mask[torch.arange(keys) % B, torch.arange(keys)] = True if dtype == torch.bool else 1.0  # every key has one
    _compare(lambda c: CF.info_nce(q, k, pos_mask=mask, symmetric=symmetric, chunk_size=c), [q, k])


@pytest.mark.parametrize("width", [M, M + K])
def test_info_nce_pos_mask_with_negatives(width: int) -> None:
    q, k, n = _leaf(B, D, seed=15), _leaf(M, D, seed=16), _leaf(K, D, seed=17)
    mask = _pos_mask(B, width, torch.float64, seed=3)
    _compare(lambda c: CF.info_nce(q, k, negatives=n, pos_mask=mask, chunk_size=c), [q, k, n])


@pytest.mark.parametrize("symmetric", [False, True])
def test_info_nce_weights(symmetric: bool) -> None:
    q, k = _leaf(B, D, seed=18), _leaf(M, D, seed=19)
    g = torch.Generator().manual_seed(4)
    weights = torch.rand(B, M, generator=g, dtype=torch.float64) * 2
    weights[torch.rand(B, M, generator=g) < 0.2] = 0.0  # some columns out of the denominator
    weights[torch.arange(B), torch.arange(B)] = 1.5  # positives keep a weight
    t = torch.tensor(0.25, dtype=torch.float64, requires_grad=True)
    _compare(
        lambda c: CF.info_nce(q, k, temperature=t, weights=weights, symmetric=symmetric, reduction="none", chunk_size=c),
        [q, k, t],
    )


def test_info_nce_weights_with_negatives_and_labels() -> None:
    q, k, n = _leaf(B, D, seed=20), _leaf(M, D, seed=21), _leaf(K, D, seed=22)
    weights = torch.rand(B, M + K, generator=torch.Generator().manual_seed(5), dtype=torch.float64) + 0.1
    labels = torch.randint(0, 4, (B,), generator=torch.Generator().manual_seed(6))
    _compare(lambda c: CF.info_nce(q, k, negatives=n, labels=labels, weights=weights, chunk_size=c), [q, k, n])


@pytest.mark.parametrize("chunk", [3, 8, 64])
def test_nt_xent(chunk: int) -> None:
    a, b = _leaf(B, D, seed=23), _leaf(B, D, seed=24)
    t = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    _compare(lambda c: CF.nt_xent(a, b, temperature=t, chunk_size=c), [a, b, t], chunk=chunk)


@pytest.mark.parametrize("views", [2, 3])
@pytest.mark.parametrize("with_labels", [False, True])
def test_supcon(views: int, with_labels: bool) -> None:
    features = _leaf(B, views, D, seed=25)
    labels = torch.randint(0, 6, (B,), generator=torch.Generator().manual_seed(7)) if with_labels else None
    t = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)
    _compare(lambda c: CF.supcon(features, labels, temperature=t, base_temperature=0.07, chunk_size=c), [features, t])


def test_supcon_single_view_needs_repeated_labels() -> None:
    features = _leaf(B, 1, D, seed=26)
    labels = torch.arange(B)
    with pytest.raises(ValueError, match="every anchor needs a positive"):
        CF.supcon(features, labels, chunk_size=CHUNK)


def test_clip_loss() -> None:
    a, b = _leaf(B, D, seed=27), _leaf(B, D, seed=28)
    scale = torch.tensor(1 / 0.07, dtype=torch.float64, requires_grad=True)
    _compare(lambda c: CF.clip_loss(a, b, scale, chunk_size=c), [a, b, scale])


def test_siglip_loss() -> None:
    a, b = _leaf(B, D, seed=29), _leaf(B, D, seed=30)
    scale = torch.tensor(10.0, dtype=torch.float64, requires_grad=True)
    bias = torch.tensor([-10.0], dtype=torch.float64, requires_grad=True)
    _compare(lambda c: CF.siglip_loss(a, b, scale, bias, chunk_size=c), [a, b, scale, bias])


def test_gradcheck_tiled_kernel() -> None:
    q, k = _leaf(9, 3, seed=31), _leaf(7, 3, seed=32)
    scale = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    labels_q, labels_k = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2]), torch.tensor([0, 1, 2, 0, 1, 2, 3])
    torch.autograd.gradcheck(
        lambda q, k, s: CF.tiled_contrastive_loss(q, k, s, row_labels=labels_q, col_labels=labels_k, chunk_size=4),
        (q, k, scale),
    )
    torch.autograd.gradcheck(
        lambda q, k, s: CF.tiled_siglip_loss(q, k[:9 - 2].repeat(2, 1)[:9], s, -1.0, chunk_size=4), (q, k, scale)
    )


def test_errors_match_naive() -> None:
    q, k = _leaf(B, D, seed=33), _leaf(M, D, seed=34)
    mask = torch.zeros(B, M, dtype=torch.bool)
    mask[1:, 0] = True
    for chunk in (None, CHUNK):
        with pytest.raises(ValueError, match="every row needs at least one positive"):
            CF.info_nce(q, k, pos_mask=mask, chunk_size=chunk)
        weights = torch.ones(B, M, dtype=torch.float64)
        weights[3, 3] = 0.0
        with pytest.raises(ValueError, match="positive column must have a weight > 0"):
            CF.info_nce(q, k, weights=weights, chunk_size=chunk)
        weights[3, 3] = -1.0
        with pytest.raises(ValueError, match="non-negative"):
            CF.info_nce(q, k, weights=weights, chunk_size=chunk)
    with pytest.raises(ValueError, match="chunk_size"):
        CF.info_nce(q, k, chunk_size=0)
    with pytest.raises(ValueError, match="chunk_size"):
        CF.nt_xent(q, k, chunk_size="naive")


def test_auto_policy() -> None:
    side = int((tiled.NAIVE_MAX_LOGITS_BYTES // 4) ** 0.5)
    assert tiled.resolve_chunk_size("auto", side, side, torch.float32) is None
    assert tiled.resolve_chunk_size("auto", side + 1, side + 1, torch.float32) == tiled.DEFAULT_CHUNK_SIZE
    assert tiled.resolve_chunk_size("auto", side, side, torch.float64) == tiled.DEFAULT_CHUNK_SIZE
    assert tiled.resolve_chunk_size(None, 10**6, 10**6, torch.float32) is None
    assert tiled.resolve_chunk_size(7, 3, 3, torch.float32) == 7


def test_auto_stays_naive_when_weights_require_grad() -> None:
    q, k = _leaf(B, D, seed=35), _leaf(M, D, seed=36)
    weights = torch.ones(B, M, dtype=torch.float64, requires_grad=True)
    CF.info_nce(q, k, weights=weights).backward()  # "auto" -> naive, weights get a gradient
    assert weights.grad is not None
    with pytest.raises(ValueError, match="does not differentiate"):
        CF.info_nce(q, k, weights=weights, chunk_size=CHUNK)


def _saved_numels(fn: Callable[[], torch.Tensor]) -> list[int]:
    """Elements of each distinct storage autograd keeps for backward (one tensor saved twice, or an
    expanded view of a small one, is counted by the memory it holds)."""
    sizes: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        sizes[storage.data_ptr()] = max(1, storage.nbytes() // max(1, tensor.element_size()))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = fn()
    loss.backward()
    return list(sizes.values())


@pytest.mark.parametrize("objective", ["info_nce", "nt_xent", "clip_loss", "siglip_loss", "supcon"])
def test_memory_nothing_quadratic_is_saved(objective: str) -> None:
    """No tensor of B x B (or even chunk x B) entries is kept for backward on the tiled path.

    The same probe on the naive path sees the full logit matrix, so the check can fail.
    """
    batch, dim, chunk = 1024, 16, 128
    a, b = torch.randn(batch, dim, requires_grad=True), torch.randn(batch, dim, requires_grad=True)
    calls: dict[str, Callable[[object], torch.Tensor]] = {
        "info_nce": lambda c: CF.info_nce(a, b, symmetric=True, chunk_size=c),
        "nt_xent": lambda c: CF.nt_xent(a, b, chunk_size=c),
        "clip_loss": lambda c: CF.clip_loss(a, b, 10.0, chunk_size=c),
        "siglip_loss": lambda c: CF.siglip_loss(a, b, 10.0, -10.0, chunk_size=c),
        "supcon": lambda c: CF.supcon(torch.stack([a, b], dim=1), chunk_size=c),
    }
    fn = calls[objective]
    naive = _saved_numels(lambda: fn(None))
    assert max(naive) >= batch * batch
    tiled_sizes = _saved_numels(lambda: fn(chunk))
    assert max(tiled_sizes) <= 2 * batch * dim
    assert sum(tiled_sizes) <= 16 * batch * dim


_PEAK_PROBE = """
import resource, sys, torch
from contrastkit import functional as CF
torch.set_num_threads(1)
torch.manual_seed(0)
batch, dim, chunk = 8192, 64, 512
a = torch.randn(batch, dim, requires_grad=True)
b = torch.randn(batch, dim, requires_grad=True)
CF.clip_loss(a[:64], b[:64], 10.0, chunk_size=16).backward()  # warm-up: kernels, thread pools
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
CF.clip_loss(a, b, 10.0, chunk_size=chunk).backward()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((peak - base) * (1 if sys.platform == "darwin" else 1024))
"""


def test_memory_peak_forward_backward_linear() -> None:
    """Peak RSS growth of a tiled forward+backward at B=8192 (fresh process) stays far below one B x B matrix."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _PEAK_PROBE], capture_output=True, text=True, timeout=120, check=True)
    grown = int(out.stdout.strip().splitlines()[-1])
    quadratic = 8192 * 8192 * 4  # one float32 B x B matrix: 256 MiB (the naive path peaks above 2 GiB)
    assert grown < quadratic / 4
