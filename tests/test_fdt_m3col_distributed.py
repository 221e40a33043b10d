"""FDT and M3CoL under DDP and gradient caching: the same step as one process with the whole batch.

2 gloo processes x B rows against 1 process x 2B rows, and gradient caching in blocks of 2
against the plain step. The towers have no batch norm and the views are the identity, so
every run sees identical inputs. FDT's captions have different lengths: each process pads
to its own longest caption, which must not matter (padding is masked). M3CoL's mixing
runs on the gathered global batch with draws every process makes alike (seeded buffers).
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from contrastkit.data.paired import ImageCaptionDataset
from contrastkit.methods.fdt import FDT
from contrastkit.methods.m3col import M3CoL
from contrastkit.nn.token_towers import ImageTextTokenTowers, pad_token_states
from contrastkit.nn.towers import ImageTextTowers
from contrastkit.train.grad_cache import grad_cache_backward
from contrastkit.views.image_text import build_image_text_views
from tests.conftest import ddp_step_results, parameter_grads, spawn_ranks

WORLD, LOCAL = 2, 4
NAMES = ("fdt", "m3col", "m3col-soft")


class Words(nn.Module):
    """A trainable bag of hashed words, pooled (``forward``) or as tokens (``tokens``)."""

    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Embedding(31, 6)
        self.output_dim = 6

    def _states(self, text: str) -> torch.Tensor:
        return self.table(torch.tensor([sum(map(ord, w)) % 31 for w in text.split()]))

    def forward(self, texts: list[str]) -> torch.Tensor:
        return torch.stack([self._states(t).mean(0) for t in texts])

    def tokens(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return pad_token_states([self._states(t) for t in texts])


class Pixels(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 8), nn.Tanh())
        self.conv = nn.Conv2d(3, 8, 2, stride=2)
        self.output_dim = 8

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(images))


def _method(name: str):
    torch.manual_seed(0)
    views = build_image_text_views("none")
    pixels = Pixels()
    # An unused parameter makes DDP fail: FDT reads the token conv only, M3CoL the pooled net only.
    if name == "fdt":
        del pixels.net
        return FDT(ImageTextTokenTowers(pixels, Words()), views, codebook_size=12, codebook_dim=6,
                   fdt_temperature=0.3)
    del pixels.conv
    method = M3CoL(ImageTextTowers(pixels, Words(), embed_dim=5), views)
    if name == "m3col-soft":
        method.on_step_end(9, 10)  # past mixup_pct: the SoftCLIP phase
    return method


def _dataset() -> ImageCaptionDataset:
    generator = torch.Generator().manual_seed(3)
    rows = WORLD * LOCAL
    return ImageCaptionDataset(torch.rand(rows, 3, 4, 4, generator=generator),
                               [[" ".join([f"word{i}", f"other{i % 3}", "thing"][: 1 + i % 3])] for i in range(rows)])



def _worker(rank: int, port: int, out_dir: str) -> None:
    builders = {name: functools.partial(_method, name) for name in NAMES}
    results = ddp_step_results(rank, port, WORLD, builders, lambda r: _dataset().__getitems__(list(range(r * LOCAL, (r + 1) * LOCAL))))
    torch.save(results, f"{out_dir}/rank{rank}.pt")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    return spawn_ranks(_worker, WORLD, tmp_path_factory.mktemp("fdt-m3col-ddp"))


@pytest.mark.parametrize("name", NAMES)
def test_two_processes_equal_one_process_with_the_doubled_batch(ranks, name) -> None:
    method = _method(name)
    loss = method(_dataset().__getitems__(list(range(WORLD * LOCAL)))).loss
    loss.backward()
    expected = parameter_grads(method)
    needed = {"log_logit_scale", "encoder.text_tower.table.weight"}
    needed |= {"codebook", "image_query.4.weight"} if name == "fdt" else {"encoder.image_head.weight"}
    assert expected.keys() >= needed
    for result in ranks:
        torch.testing.assert_close(result[f"{name}/loss"], loss.detach(), atol=1e-6, rtol=1e-6)
        for key in expected:
            torch.testing.assert_close(result[f"{name}/grad/{key}"], expected[key], atol=1e-6, rtol=1e-5,
                                       msg=lambda m: f"{key}: {m}")


@pytest.mark.parametrize("name", NAMES)
def test_gradient_cache_equals_the_plain_step(name) -> None:
    batch = _dataset().__getitems__(list(range(WORLD * LOCAL)))
    plain = _method(name)
    plain_loss = plain(batch).loss
    plain_loss.backward()
    cached = _method(name)
    output = grad_cache_backward(cached, batch, micro_batch_size=2, device=torch.device("cpu"))
    torch.testing.assert_close(output.loss, plain_loss.detach(), atol=1e-6, rtol=1e-6)
    expected, got = parameter_grads(plain), parameter_grads(cached)
    assert got.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], atol=1e-6, rtol=1e-5)  # float32 sums in another order
