"""CLIP and SigLIP under DDP and gradient caching: the same step as one process with the whole batch.

2 gloo processes x B rows against 1 process x 2B rows, and gradient caching in blocks of 2
against the plain step. The towers have no batch norm and the views are the identity, so
every run sees identical inputs.
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from contrastkit.data.paired import ImageCaptionDataset
from contrastkit.methods.clip import CLIP, SigLIP
from contrastkit.nn.towers import ImageTextTowers
from contrastkit.train.grad_cache import grad_cache_backward
from contrastkit.views.image_text import build_image_text_views
from tests.conftest import ddp_step_results, parameter_grads, spawn_ranks

WORLD, LOCAL = 2, 4
METHODS = {"clip": (CLIP, {}), "siglip": (SigLIP, {"bias_init": -5.0})}


class Words(nn.Module):
    """A trainable bag of hashed words: a text tower without a transformer."""

    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Embedding(31, 6)
        self.output_dim = 6

    def forward(self, texts: list[str]) -> torch.Tensor:
        return torch.stack([self.table(torch.tensor([sum(map(ord, w)) % 31 for w in t.split()])).mean(0)
                            for t in texts])


class Pixels(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 8), nn.Tanh())
        self.output_dim = 8

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


def _method(name: str):
    torch.manual_seed(0)
    cls, options = METHODS[name]
    return cls(ImageTextTowers(Pixels(), Words(), embed_dim=5), build_image_text_views("none"), **options)


def _dataset() -> ImageCaptionDataset:
    generator = torch.Generator().manual_seed(3)
    rows = WORLD * LOCAL
    return ImageCaptionDataset(torch.rand(rows, 3, 4, 4, generator=generator),
                               [[f"word{i} other{i % 3} thing"] for i in range(rows)])



def _worker(rank: int, port: int, out_dir: str) -> None:
    builders = {name: functools.partial(_method, name) for name in METHODS}
    results = ddp_step_results(rank, port, WORLD, builders, lambda r: _dataset().__getitems__(list(range(r * LOCAL, (r + 1) * LOCAL))))
    torch.save(results, f"{out_dir}/rank{rank}.pt")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    return spawn_ranks(_worker, WORLD, tmp_path_factory.mktemp("image-text-ddp"))


@pytest.mark.parametrize("name", sorted(METHODS))
def test_two_processes_equal_one_process_with_the_doubled_batch(ranks, name) -> None:
    method = _method(name)
    loss = method(_dataset().__getitems__(list(range(WORLD * LOCAL)))).loss
    loss.backward()
    expected = parameter_grads(method)
    assert expected.keys() >= {"log_logit_scale", "encoder.image_head.weight", "encoder.text_tower.table.weight"}
    for result in ranks:
        # float32 throughout (the towers' own dtype): agreement to float32 rounding.
        torch.testing.assert_close(result[f"{name}/loss"], loss.detach(), atol=1e-6, rtol=1e-6)
        for key in expected:
            torch.testing.assert_close(result[f"{name}/grad/{key}"], expected[key], atol=1e-6, rtol=1e-5,
                                       msg=lambda m: f"{key}: {m}")


@pytest.mark.parametrize("name", sorted(METHODS))
def test_gradient_cache_equals_the_plain_step(name) -> None:
    batch = _dataset().__getitems__(list(range(WORLD * LOCAL)))
    plain = _method(name)
    plain(batch).loss.backward()
    cached = _method(name)
    grad_cache_backward(cached, batch, micro_batch_size=2, device=torch.device("cpu"))
    expected, got = parameter_grads(plain), parameter_grads(cached)
    assert got.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], atol=1e-6, rtol=1e-5)  # float32 sums in another order


def test_multi_positive_clip_refuses_gradient_caching_clearly() -> None:
    method = CLIP(ImageTextTowers(Pixels(), Words(), embed_dim=5), build_image_text_views("none"),
                  multi_positive=True)
    with pytest.raises(ValueError, match="multi-positive CLIP"):
        grad_cache_backward(method, _dataset().__getitems__(list(range(4))), micro_batch_size=2, device=torch.device("cpu"))
