"""Gradient caching: parameter gradients equal the one-big-batch gradients."""

from __future__ import annotations

import pytest
import torch

from contrastkit.data import ArrayDataset, Batch
from contrastkit.methods import Method, build_method
from contrastkit.nn import MLPEncoder, ProjectionHead
from contrastkit.train.grad_cache import grad_cache_backward, split_batch
from contrastkit.train.trainer import TrainConfig, Trainer
from contrastkit.views.image import build_views

IDENTITY_VIEWS = {"crop": False, "flip_p": 0.0, "jitter_p": 0.0, "blur_p": 0.0}


def _method(name: str, views: dict | None = None, **options):
    """A float64 method without batch statistics (BatchNorm would make blocks depend on each other)."""
    torch.manual_seed(0)
    encoder = MLPEncoder(64, hidden_dims=(32,), output_dim=16, batch_norm=False)
    method = build_method(name, encoder, build_views("simclr", image_size=8, channels=1, **(views or {})), **options)
    method.projector = ProjectionHead(16, 24, 8, batch_norm=False)
    return method.double()


def _grads(method) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in method.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", ["simclr", "supcon", "barlow-twins", "vicreg"])
def test_grad_cache_equals_one_big_batch(name):
    generator = torch.Generator().manual_seed(1)
    batch = Batch(torch.rand(16, 1, 8, 8, generator=generator, dtype=torch.float64), torch.arange(16) % 3)
    big = _method(name, IDENTITY_VIEWS)
    loss = big(batch).loss
    loss.backward()
    cached = _method(name, IDENTITY_VIEWS)
    output = grad_cache_backward(cached, batch, 5, device=torch.device("cpu"))  # blocks of 5, 5, 6
    assert torch.allclose(output.loss, loss.detach(), atol=1e-12)
    expected, got = _grads(big), _grads(cached)
    assert expected.keys() == got.keys() and expected
    for key in expected:
        assert torch.allclose(got[key], expected[key], atol=1e-10), key


def test_split_batch_never_leaves_a_single_row():
    batch = Batch(torch.zeros(16, 2), torch.arange(16))
    assert [len(b) for b in split_batch(batch, 5)] == [5, 5, 6]
    assert [len(b) for b in split_batch(batch, 4)] == [4, 4, 4, 4]
    assert torch.equal(torch.cat([b.labels for b in split_batch(batch, 5)]), batch.labels)


def test_grad_cache_replays_the_augmentation_rng():
    """With random views, the re-run blocks must draw exactly the views the cached pass drew."""
    generator = torch.Generator().manual_seed(2)
    batch = Batch(torch.rand(12, 1, 8, 8, generator=generator, dtype=torch.float64))
    reference = _method("simclr")
    torch.manual_seed(7)
    blocks = [reference.embeddings(block) for block in split_batch(batch, 4)]  # same RNG order as the cached pass
    z_a, z_b = (torch.cat([b[i] for b in blocks]) for i in range(2))
    reference.loss_from_embeddings((z_a, z_b), batch).loss.backward()
    cached = _method("simclr")
    torch.manual_seed(7)
    grad_cache_backward(cached, batch, 4, device=torch.device("cpu"))
    after_cached = torch.get_rng_state()
    for key, value in _grads(reference).items():
        assert torch.allclose(_grads(cached)[key], value, atol=1e-10), key
    torch.manual_seed(7)
    for block in split_batch(batch, 4):
        reference.embeddings(block)
    assert torch.equal(after_cached, torch.get_rng_state())  # the RNG ends where one pass would leave it


def test_trainer_runs_with_grad_cache_and_rejects_what_it_cannot_do(tmp_path):
    dataset = ArrayDataset(torch.rand(64, 1, 8, 8), torch.arange(64) % 4)
    method = _method("simclr").float()
    config = TrainConfig(batch_size=32, steps=3, grad_cache_micro_batch=8, progress=False)
    result = Trainer(method, dataset, config, tmp_path / "ok").fit()
    assert result.steps == 3 and torch.isfinite(torch.tensor(result.final_loss))
    with pytest.raises(ValueError, match="at least 2 rows"):
        Trainer(_method("simclr").float(), dataset, TrainConfig(batch_size=32, steps=1, grad_cache_micro_batch=1,
                                                                progress=False), tmp_path / "small").fit()

    class Unsplit(Method):  # a method with only forward(): gradient caching cannot split it
        def __init__(self) -> None:
            super().__init__()
            self.encoder = MLPEncoder(64, hidden_dims=(8,), output_dim=4)

    with pytest.raises(ValueError, match="Unsplit does not implement embeddings"):
        Trainer(Unsplit(), dataset, TrainConfig(batch_size=32, steps=1, grad_cache_micro_batch=8, progress=False),
                tmp_path)


@pytest.mark.parametrize("name,options", [("byol", {}), ("simsiam", {}), ("moco", {"queue_size": 32})])
def test_grad_cache_equals_one_big_batch_for_momentum_and_predictor_methods(name, options):
    generator = torch.Generator().manual_seed(3)
    batch = Batch(torch.rand(12, 1, 8, 8, generator=generator, dtype=torch.float64))

    def build():
        torch.manual_seed(0)
        encoder = MLPEncoder(64, hidden_dims=(32,), output_dim=16, batch_norm=False)
        method = build_method(name, encoder, build_views("simclr", 8, 1, **IDENTITY_VIEWS), **options)
        for module in list(method.modules()):  # drop batch statistics: blocks must be independent
            for child_name, child in list(module.named_children()):
                if isinstance(child, torch.nn.BatchNorm1d):
                    setattr(module, child_name, torch.nn.Identity())
        return method.double()

    big = build()
    loss = big(batch).loss
    loss.backward()
    cached = build()
    output = grad_cache_backward(cached, batch, 4, device=torch.device("cpu"))
    assert torch.allclose(output.loss, loss.detach(), atol=1e-12)
    for key, value in _grads(big).items():
        assert torch.allclose(_grads(cached)[key], value, atol=1e-10), key
    if name == "moco":
        assert torch.allclose(big._pending_keys, cached._pending_keys, atol=1e-12)


def _grad_cache_worker(rank: int, port: int, out_dir: str) -> None:
    from datetime import timedelta

    import torch.distributed as dist

    from contrastkit.train.distributed import DistributedContext, average_gradients

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2,
                            timeout=timedelta(seconds=60))  # fmt: skip
    try:
        generator = torch.Generator().manual_seed(1)
        full = Batch(torch.rand(16, 1, 8, 8, generator=generator, dtype=torch.float64), torch.arange(16) % 3)
        local = Batch(full.inputs[rank * 8 : (rank + 1) * 8], full.labels[rank * 8 : (rank + 1) * 8])
        results = {}
        for name in ("simclr", "vicreg"):
            method = _method(name, IDENTITY_VIEWS)
            output = grad_cache_backward(method, local, 3, device=torch.device("cpu"))  # blocks of 3, 5
            average_gradients(method, DistributedContext(rank, 2))
            results[f"{name}/loss"] = output.loss
            results.update({f"{name}/{key}": value for key, value in _grads(method).items()})
        torch.save(results, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.barrier()
        dist.destroy_process_group()


def test_grad_cache_under_two_processes_equals_one_process_with_the_whole_batch(tmp_path):
    """Each rank caches its 8 rows in blocks; after averaging, the step is one process's step on 16 rows."""
    from tests.conftest import spawn_ranks

    ranks = spawn_ranks(_grad_cache_worker, 2, tmp_path)
    generator = torch.Generator().manual_seed(1)
    full = Batch(torch.rand(16, 1, 8, 8, generator=generator, dtype=torch.float64), torch.arange(16) % 3)
    for name in ("simclr", "vicreg"):
        single = _method(name, IDENTITY_VIEWS)
        loss = single(full).loss
        loss.backward()
        expected = _grads(single)
        for result in ranks:
            assert torch.allclose(result[f"{name}/loss"], loss.detach(), atol=1e-12)
            for key, value in expected.items():
                assert torch.allclose(result[f"{name}/{key}"], value, atol=1e-10), (name, key)
