"""Symile and pairwise CLIP under DDP and gradient caching: the same step as one process with the whole batch.

2 gloo processes x B tuples against 1 process x 2B, and gradient caching in blocks of 2 against
the plain step. The towers have no batch norm and the views are the identity, so every run
sees identical inputs; Symile's ``"n"`` permutations come from the method's own seeded
generator, so every process draws the same permutation of the gathered batch although the
processes' global RNGs differ.
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from contrastkit.data.tuples import TupleDataset
from contrastkit.methods import build_method
from contrastkit.nn.tuple_towers import ByteTextEncoder, TupleTowers
from contrastkit.train.grad_cache import grad_cache_backward
from tests.conftest import ddp_step_results, parameter_grads, spawn_ranks

WORLD, LOCAL = 2, 4
METHODS = {"symile-n": ("symile", {"negatives": "n"}), "symile-n_squared": ("symile", {"negatives": "n_squared"}),
           "pairwise-clip": ("pairwise-clip", {})}


class Pixels(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 8), nn.Tanh())
        self.output_dim = 8

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class Frames(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(5 * 6, 7), nn.Tanh())
        self.output_dim = 7

    def forward(self, spectrograms: torch.Tensor) -> torch.Tensor:
        return self.net(spectrograms)


def _method(key: str, *, missing_embedding: bool = True):
    torch.manual_seed(0)
    name, options = METHODS[key]
    towers = TupleTowers({"image": Pixels(), "audio": Frames(), "text": ByteTextEncoder(width=6, output_dim=6)},
                         embed_dim=5, missing_embedding=missing_embedding)
    return build_method(name, towers, (nn.Identity(), nn.Identity(), nn.Identity()), **options)


def _dataset() -> TupleDataset:
    generator = torch.Generator().manual_seed(3)
    rows = WORLD * LOCAL
    return TupleDataset({"image": torch.rand(rows, 3, 4, 4, generator=generator),
                         "audio": torch.randn(rows, 5, 6, generator=generator),
                         "text": [f"word{i} | mot{i % 3}" for i in range(rows)]},
                        {"image": torch.arange(rows), "audio": torch.arange(rows).flip(0), "text": torch.arange(rows)},
                        missing={"audio": torch.arange(rows) % 3 == 0})



def _worker(rank: int, port: int, out_dir: str) -> None:
    torch.manual_seed(100 + rank)  # as the trainer does: each process's global RNG differs
    builders = {key: functools.partial(_method, key) for key in METHODS}
    results = ddp_step_results(rank, port, WORLD, builders, lambda r: _dataset().__getitems__(list(range(r * LOCAL, (r + 1) * LOCAL))))
    torch.save(results, f"{out_dir}/rank{rank}.pt")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    return spawn_ranks(_worker, WORLD, tmp_path_factory.mktemp("symile-ddp"))


@pytest.mark.parametrize("key", sorted(METHODS))
def test_two_processes_equal_one_process_with_the_doubled_batch(ranks, key) -> None:
    method = _method(key)
    loss = method(_dataset().__getitems__(list(range(WORLD * LOCAL)))).loss
    loss.backward()
    expected = parameter_grads(method)
    assert expected.keys() >= {"log_logit_scale", "encoder.heads.image.weight", "encoder.towers.text.embedding.weight",
                               "encoder.missing_embeddings.audio.weight"}
    for result in ranks:
        torch.testing.assert_close(result[f"{key}/loss"], loss.detach(), atol=1e-6, rtol=1e-6)
        for name in expected:
            torch.testing.assert_close(result[f"{key}/grad/{name}"], expected[name], atol=1e-6, rtol=1e-5,
                                       msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("key", sorted(METHODS))
def test_gradient_cache_equals_the_plain_step(key) -> None:
    batch = _dataset().__getitems__(list(range(WORLD * LOCAL)))
    plain = _method(key)
    plain(batch).loss.backward()
    cached = _method(key)
    grad_cache_backward(cached, batch, micro_batch_size=2, device=torch.device("cpu"))
    expected, got = parameter_grads(plain), parameter_grads(cached)
    assert got.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], atol=1e-6, rtol=1e-5)  # float32 sums in another order
