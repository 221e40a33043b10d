"""contrastkit.lightning: contrastkit methods trained by a user's ``lightning.Trainer``.

Checks: a few steps on digits train (finite loss, parameters move); ``on_step_end`` runs once
per optimiser step under gradient accumulation (BYOL's momentum target moves); the cosine
schedule decays; and a 2-process ``strategy="ddp"`` step on CPU (gloo) gives the same loss and
gradients as contrastkit's own DDP path (tests/conftest.py ``ddp_step_results``, what
``contrastkit train`` does under torchrun), for SimCLR whose negatives are gathered across
processes with gradient.
"""

from __future__ import annotations

import functools
import os

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

lightning = pytest.importorskip("lightning", reason="Lightning is not installed: pip install 'contrastkit[lightning]'")

from contrastkit.data import Batch, collate_batches, load_dataset  # noqa: E402
from contrastkit.lightning import MethodModule, as_batch  # noqa: E402
from tests.conftest import ddp_step_results, free_port, make_method, parameter_grads  # noqa: E402

WORLD, LOCAL = 2, 16


def _trainer(tmp_path, **options) -> lightning.Trainer:
    quiet = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    return lightning.Trainer(accelerator="cpu", default_root_dir=str(tmp_path), **quiet, **options)


def _digits_loader(batch_size: int = 64) -> DataLoader:
    return DataLoader(load_dataset("digits").train, batch_size=batch_size, shuffle=True, collate_fn=collate_batches,
                      generator=torch.Generator().manual_seed(0))  # fmt: skip


def test_a_few_steps_on_digits_train_the_method(tmp_path):
    method = make_method("simclr", seed=0)
    before = {name: p.detach().clone() for name, p in method.named_parameters()}
    module = MethodModule(method, optimizer="adamw", lr=1e-2)
    trainer = _trainer(tmp_path, max_steps=5)
    trainer.fit(module, _digits_loader())
    assert trainer.global_step == 5
    loss = trainer.callback_metrics["train/loss"]
    assert torch.isfinite(loss) and loss > 0
    changed = [name for name, p in method.named_parameters() if not torch.equal(p.detach(), before[name])]
    assert len(changed) == len(before), sorted(set(before) - set(changed))
    embeddings = module(torch.rand(3, 1, 8, 8))
    assert embeddings.shape == (3, method.encoder.output_dim)


def test_on_step_end_runs_once_per_optimiser_step_under_accumulation(tmp_path):
    method = make_method("byol", seed=0)
    calls = []
    original = method.on_step_end
    method.on_step_end = lambda step, total: (calls.append((step, total)), original(step, total))
    target_before = [p.detach().clone() for p in method.target.parameters()]
    module = MethodModule(method, optimizer=functools.partial(torch.optim.SGD, lr=0.05), scheduler="cosine")
    trainer = _trainer(tmp_path, max_steps=3, accumulate_grad_batches=2)
    trainer.fit(module, _digits_loader(32))
    assert calls == [(0, 3), (1, 3), (2, 3)]  # 6 batches, 3 steps: the momentum update follows the steps
    assert any(not torch.equal(a, b.detach()) for a, b in zip(target_before, method.target.parameters()))
    # warm-up + cosine over 3 steps: the rate after the last step is the cosine's end (final_lr_fraction 0)
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_batches_from_tensor_datasets_and_bad_arguments():
    x, y = torch.rand(4, 1, 8, 8), torch.arange(4)
    assert torch.equal(as_batch(x).inputs, x)
    batch = as_batch(next(iter(DataLoader(TensorDataset(x, y), batch_size=4))))
    assert torch.equal(batch.inputs, x) and torch.equal(batch.labels, y)
    assert as_batch(Batch(x)).inputs is x
    with pytest.raises(ValueError, match="expected a contrastkit Batch"):
        as_batch({"inputs": x})
    with pytest.raises(ValueError, match="expected a contrastkit Method"):
        MethodModule(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="optimizer: expected one of"):
        MethodModule(make_method(), optimizer="adam")
    with pytest.raises(ValueError, match="scheduler"):
        MethodModule(make_method(), scheduler="linear")


# ---------------------------------------------------------------------------------------------- DDP


def _local_batch(rank: int) -> Batch:
    return load_dataset("digits").train.__getitems__(list(range(rank * LOCAL, (rank + 1) * LOCAL)))


def _seeded_method(rank: int):
    """The same SimCLR on every rank; then the same augmentation stream for both paths of a rank."""
    method = make_method("simclr", seed=0)
    torch.manual_seed(100 + rank)
    return method


class _Capture(lightning.Callback):
    """Seeds the augmentations like ``_seeded_method``; keeps the loss and the synced gradients."""

    def __init__(self, rank: int) -> None:
        self.rank, self.results = rank, {}

    def on_train_batch_start(self, trainer, module, batch, batch_index):
        torch.manual_seed(100 + self.rank)

    def on_before_optimizer_step(self, trainer, module, optimizer):
        self.results.update({f"simclr/grad/{k}": v for k, v in parameter_grads(module.method).items()})

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_index):
        self.results["simclr/loss"] = outputs["loss"].detach()


def _ddp_worker(rank: int, contrastkit_port: int, lightning_port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    ours = ddp_step_results(rank, contrastkit_port, WORLD, {"simclr": lambda: _seeded_method(rank)}, _local_batch)
    # How torchrun (or any external launcher) describes a process to Lightning: it then starts no processes.
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(lightning_port), LOCAL_RANK=str(rank),
                      NODE_RANK="0", WORLD_SIZE=str(WORLD), RANK=str(rank))  # fmt: skip
    capture = _Capture(rank)
    module = MethodModule(make_method("simclr", seed=0), optimizer=functools.partial(torch.optim.SGD, lr=0.0))
    trainer = lightning.Trainer(
        accelerator="cpu", devices=WORLD, num_nodes=1, strategy="ddp", max_steps=1, callbacks=[capture],
        use_distributed_sampler=False, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=out_dir,
    )  # fmt: skip
    loader = DataLoader([_local_batch(rank)], batch_size=None, collate_fn=collate_batches)
    trainer.fit(module, loader)
    assert trainer.strategy.world_size == WORLD and trainer.strategy.global_rank == rank
    torch.save({"ours": ours, "lightning": capture.results}, f"{out_dir}/rank{rank}.pt")


def test_lightning_ddp_on_cpu_gives_the_gradients_of_contrastkits_own_ddp(tmp_path):
    import torch.multiprocessing as mp

    mp.start_processes(_ddp_worker, args=(free_port(), free_port(), str(tmp_path)), nprocs=WORLD, join=True,
                       start_method="spawn")  # fmt: skip
    results = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in range(WORLD)]
    for rank, result in enumerate(results):
        ours, theirs = result["ours"], result["lightning"]
        assert set(theirs) == set(ours) and len(ours) > 2
        for key in ours:
            torch.testing.assert_close(theirs[key], ours[key], rtol=1e-5, atol=1e-6, msg=f"rank {rank}: {key}")
    # DDP averaged them: every rank holds the same gradients, though each saw its own rows
    grads = [{k: v for k, v in result["lightning"].items() if "/grad/" in k} for result in results]
    for key in grads[0]:
        torch.testing.assert_close(grads[0][key], grads[1][key])
    assert any(value.abs().sum() > 0 for value in grads[0].values())
