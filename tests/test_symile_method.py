"""The Symile and pairwise-CLIP methods on tuples: the loss against the functional reference, the
reproducible negatives, the missingness embedding, and the XOR check through the method and protocol."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from contrastkit.data.registry import DatasetSplits
from contrastkit.data.tuples import TupleDataset
from contrastkit.eval.protocols.tuples import TupleProtocol, TupleSettings
from contrastkit.functional.symile import pairwise_clip_loss, symile_loss
from contrastkit.methods import build_method, method_options
from contrastkit.nn.tuple_towers import ByteTextEncoder, TupleTowers, build_tuple_towers


class Linear(nn.Module):
    def __init__(self, inputs: int, width: int = 6) -> None:
        super().__init__()
        self.net = nn.Linear(inputs, width)
        self.output_dim = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _method(name: str, *, missing_embedding: bool = False, **options):
    torch.manual_seed(0)
    towers = TupleTowers({"a": Linear(3), "b": Linear(4), "c": Linear(2)}, embed_dim=5,
                         missing_embedding=missing_embedding)
    return build_method(name, towers, (nn.Identity(), nn.Identity(), nn.Identity()), **options)


def _batch(rows: int = 6, generator_seed: int = 3):
    generator = torch.Generator().manual_seed(generator_seed)
    data = TupleDataset({"a": torch.randn(rows, 3, generator=generator), "b": torch.randn(rows, 4, generator=generator),
                         "c": torch.randn(rows, 2, generator=generator)}, {key: torch.arange(rows) for key in "abc"},
                        kinds={"a": "vector", "b": "vector", "c": "vector"})
    return data.batch(torch.arange(rows))


def test_options_are_the_papers() -> None:
    assert method_options("symile") == {"negatives": "n", "logit_scale_init": math.log(1 / 0.07),
                                        "learn_logit_scale": True, "normalize": True}
    assert set(method_options("pairwise-clip")) == {"logit_scale_init", "learn_logit_scale", "normalize"}
    with pytest.raises(ValueError, match="method.negatives"):
        _method("symile", negatives="n_cubed")


@pytest.mark.parametrize("negatives", ["n", "n_squared"])
def test_symile_loss_is_the_functional_loss_on_normalised_embeddings(negatives) -> None:
    method = _method("symile", negatives=negatives)
    batch = _batch()
    reference = [F.normalize(method.encoder.encode(field, batch.inputs[field]), dim=-1) for field in "abc"]
    generator = torch.Generator().manual_seed(int(method.negative_seed)) if negatives == "n" else None
    expected = symile_loss(reference, 1 / 0.07, negatives=negatives, generator=generator)
    torch.testing.assert_close(method(batch).loss, expected)
    assert int(method.negative_draws) == (1 if negatives == "n" else 0)


def test_n_negatives_are_reproducible_and_move_on_each_step() -> None:
    first, second = _method("symile"), _method("symile")
    batch = _batch(rows=12)
    losses = [first(batch).loss.item(), first(batch).loss.item()]
    assert losses == [second(batch).loss.item(), second(batch).loss.item()]  # same seed, same draws
    assert losses[0] != losses[1]  # a new permutation on the next step
    assert {"negative_seed", "negative_draws"} <= set(first.state_dict())


def test_pairwise_clip_is_the_mean_of_pairwise_clip_losses() -> None:
    method = _method("pairwise-clip")
    batch = _batch()
    reference = [method.encoder.encode(field, batch.inputs[field]) for field in "abc"]
    torch.testing.assert_close(method(batch).loss, pairwise_clip_loss(reference, 1 / 0.07))
    assert method.zero_shot_scoring == "sum" and _method("symile").zero_shot_scoring == "product"


def test_missingness_embedding_changes_the_missing_rows_only_and_learns() -> None:
    method = _method("symile", missing_embedding=True)
    batch = _batch()
    observed = method.encoder.encode("a", batch.inputs["a"])
    missing = torch.tensor([True, False, False, True, False, False])
    masked = method.encoder.encode("a", batch.inputs["a"], missing)
    assert torch.equal(observed[~missing], masked[~missing]) and not torch.allclose(observed[missing], masked[missing])
    batch.inputs["missing"] = {"a": missing, "b": torch.zeros(6, dtype=torch.bool), "c": torch.zeros(6, dtype=torch.bool)}
    method(batch).loss.backward()
    grad = method.encoder.missing_embeddings["a"].weight.grad
    assert grad[0].abs().sum() > 0 and grad[1].abs().sum() > 0  # both indicator rows take part


def test_methods_reject_other_data_clearly() -> None:
    method = _method("symile")
    from contrastkit.data.batch import Batch

    with pytest.raises(ValueError, match="fields a, b, c"):
        method(Batch(torch.zeros(4, 3)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        method(_batch(rows=1))
    with pytest.raises(ValueError, match="encoder=tuple-towers"):
        build_method("symile", Linear(3), (nn.Identity(),))


def test_byte_text_encoder_pools_real_bytes_only() -> None:
    torch.manual_seed(0)
    encoder = ByteTextEncoder(width=8, output_dim=4, kernel_size=3)
    alone = encoder(["chat"])
    padded = encoder(["chat", "a much longer text in another batch row"])[0]
    torch.testing.assert_close(alone[0], padded)  # padding never changes a text's features
    assert encoder(["кошка", "猫"]).shape == (2, 4)
    towers = build_tuple_towers({"image": {"kind": "image", "shape": [3, 8, 8]}, "text": {"kind": "text"}},
                                towers={"image": {"name": "small-resnet", "widths": [8, 16]}}, embed_dim=4)
    assert towers({"image": torch.rand(2, 3, 8, 8), "text": ["x", "y"]}).shape == (2, 8)
    with pytest.raises(ValueError, match="unknown field"):
        build_tuple_towers({"image": {"kind": "image", "shape": [3, 8, 8]}, "text": {"kind": "text"}},
                           towers={"audio": "audio-cnn"})


def _xor(rows: int, seed: int) -> TupleDataset:
    generator = torch.Generator().manual_seed(seed)
    a, b = torch.randint(2, (rows,), generator=generator), torch.randint(2, (rows,), generator=generator)
    table = torch.eye(2)
    return TupleDataset({"a": table, "b": table, "c": table}, {"a": a, "b": b, "c": a ^ b},
                        kinds={"a": "vector", "b": "vector", "c": "vector"})


def test_symile_solves_xor_where_pairwise_clip_stays_at_chance() -> None:
    # The Symile paper's check (a, b ~ Bernoulli(0.5), c = a XOR b), through the method and the protocol.
    splits = DatasetSplits(train=_xor(1000, 0), test=_xor(400, 1), num_classes=2, input_shape=(2,), modality="tuples")
    accuracy = {}
    for name in ("symile", "pairwise-clip"):
        torch.manual_seed(0)
        towers = TupleTowers({field: Linear(2, 16) for field in "abc"}, embed_dim=16)
        method = build_method(name, towers, (nn.Identity(),) * 3, logit_scale_init=math.log(5.0))
        optimiser = torch.optim.AdamW(method.parameters(), lr=0.05)
        generator = torch.Generator().manual_seed(0)
        for _ in range(150):
            loss = method(splits.train.batch(torch.randint(1000, (100,), generator=generator))).loss
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        protocol = TupleProtocol(splits, TupleSettings(target="c", bootstrap=0), None, seed=0)
        accuracy[name] = protocol.final(method)[0]["zero_shot_top1"]
    assert accuracy["symile"] >= 0.95, accuracy
    assert accuracy["pairwise-clip"] <= 0.65, accuracy
