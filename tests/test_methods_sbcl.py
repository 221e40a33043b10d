"""The SBCL method: warm-up SupCon, per-row feature bank, re-clustering schedule, checkpoints."""

from __future__ import annotations

import pytest
import torch

from contrastkit.data import Batch
from contrastkit.functional import supcon
from contrastkit.methods.sbcl import SBCL
from contrastkit.nn.registry import build_encoder
from contrastkit.utils.seed import seed_everything
from contrastkit.views.image import build_views


def make_method(name: str = "sbcl", **options) -> SBCL:
    """A small SBCL on 8x8 images (built directly: the registry entry is added by the lead)."""
    assert name == "sbcl"
    seed_everything(0)
    net = build_encoder("mlp", in_channels=1, image_size=8, hidden_dims=(64,), output_dim=32)
    return SBCL(net, build_views("simclr", image_size=8, channels=1), **options)


def _batch(index: torch.Tensor, labels: torch.Tensor, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.rand(index.numel(), 1, 8, 8, generator=g), labels, index)


# A long-tailed toy set: class 0 has 12 rows, class 1 has 4, class 2 has 4 (n_tail = 4 -> M = 3, 1, 1).
LABELS = torch.tensor([0] * 12 + [1] * 4 + [2] * 4)


def test_warm_up_is_supcon_then_recluster_gives_balanced_subclasses() -> None:
    method = make_method("sbcl", recluster_every=2, rank_temperature=False)
    torch.manual_seed(0)
    index = torch.arange(20)
    first = method(_batch(index[:10], LABELS[:10]))
    assert first.logs["subclasses"] == 0.0
    method.on_step_end(0, 10)
    assert int(method.clusterings) == 0
    method(_batch(index[10:], LABELS[10:], seed=1))
    method.on_step_end(1, 10)  # step 2 ends: first clustering
    assert int(method.clusterings) == 1
    sub = method.subclass[:20]
    assert (sub >= 0).all()
    assert torch.unique(sub[LABELS == 0]).numel() == 3
    counts = torch.unique(sub[LABELS == 0], return_counts=True)[1]
    assert counts.tolist() == [4, 4, 4]
    assert torch.unique(sub[LABELS == 1]).numel() == 1 and torch.unique(sub[LABELS == 2]).numel() == 1
    out = method(_batch(index, LABELS, seed=2))
    assert out.logs["subclasses"] == 5.0 and torch.isfinite(out.loss)
    out.loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.encoder.parameters())


def test_before_clustering_the_loss_equals_supcon() -> None:
    method = make_method("sbcl").eval()
    batch = _batch(torch.arange(20), LABELS)
    torch.manual_seed(3)
    z_a, z_b = method.embeddings(batch)
    loss = method.objective(z_a, z_b, batch)
    assert torch.allclose(loss, supcon(torch.stack([z_a, z_b], 1), LABELS, temperature=0.1))


def test_after_clustering_the_loss_is_not_supcon_and_unseen_rows_are_singletons() -> None:
    method = make_method("sbcl", recluster_every=1, rank_temperature=True)
    method(_batch(torch.arange(20), LABELS))
    method.on_step_end(0, 10)
    assert method.class_tau.shape == (3,) and (method.class_tau > 0).all()
    method.eval()
    batch = _batch(torch.tensor([0, 1, 2, 3, 12, 13, 16, 25, 26]), torch.tensor([0, 0, 0, 0, 1, 1, 2, 0, 0]))
    z_a, z_b = method.embeddings(batch)
    loss = method.objective(z_a, z_b, batch)
    assert not torch.allclose(loss, supcon(torch.stack([z_a, z_b], 1), batch.labels, temperature=0.1))
    assert method.bank.shape[0] >= 27  # rows 25 and 26 are new: the bank grew but has no subclass for them
    assert (method.subclass[25:27] == -1).all()


def test_bank_survives_a_state_dict_round_trip() -> None:
    method = make_method("sbcl", recluster_every=1)
    method(_batch(torch.arange(20), LABELS))
    method.on_step_end(0, 10)
    fresh = make_method("sbcl", recluster_every=1)
    fresh.load_state_dict(method.state_dict())
    assert torch.equal(fresh.subclass, method.subclass) and torch.equal(fresh.bank, method.bank)
    assert int(fresh.clusterings) == 1


def test_errors() -> None:
    method = make_method("sbcl", recluster_every=1)
    with pytest.raises(ValueError, match="batch.index"):
        method.on_step_end(0, 10)  # nothing in the bank
    with pytest.raises(ValueError, match="recluster_every"):
        make_method("sbcl", recluster_every=0)
