"""The tuple data set and Symile's zero-shot protocol: ranks against a loop, scoring rules, baselines, missing values."""

from __future__ import annotations

import pytest
import torch

from contrastkit.data.registry import DatasetSplits
from contrastkit.data.tuples import MISSING_TEXT, TupleDataset
from contrastkit.eval.protocols.tuples import (
    TupleProtocol,
    TupleSettings,
    zero_shot_ranks,
)


def test_zero_shot_ranks_match_a_loop_over_candidates() -> None:
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(7, 5, generator=generator), torch.randn(7, 5, generator=generator)
    candidates = torch.randn(4, 5, generator=generator)
    owner = torch.tensor([0, 1, 2, 3, 0, 1, 2])
    for scoring, combine in (("product", lambda x, y: x * y), ("sum", lambda x, y: x + y)):
        ranks = zero_shot_ranks([a, b], candidates, owner, scoring)
        for q in range(7):
            score = [float((combine(a[q], b[q]) * candidates[c]).sum()) for c in range(4)]
            expected = 1 + sum(score[c] >= score[owner[q]] for c in range(4) if c != owner[q])
            assert int(ranks[q]) == expected
    with pytest.raises(ValueError, match="scoring"):
        zero_shot_ranks([a], candidates, owner, "max")


def _xor_splits(rows: int = 64) -> DatasetSplits:
    """Bits a, b and c = a XOR b as one-hot vector fields (the Symile paper's check)."""
    generator = torch.Generator().manual_seed(1)
    a, b = torch.randint(2, (rows,), generator=generator), torch.randint(2, (rows,), generator=generator)
    table = torch.eye(2)
    data = TupleDataset({"a": table, "b": table, "c": table}, {"a": a, "b": b, "c": a ^ b}, labels=a ^ b)
    return DatasetSplits(train=data, test=data, num_classes=2, input_shape=(2,), modality="tuples", name="xor")


class XorModel(torch.nn.Module):
    """Embeddings that solve XOR under the MIP and no pairwise score can: bit x -> (+1, 1 - 2x) / sqrt 2."""

    zero_shot_scoring = "product"

    def __init__(self) -> None:
        super().__init__()
        self.fields = ["a", "b", "c"]

    def encode_field(self, field, inputs, missing=None):
        bit = inputs.argmax(1).float()
        out = torch.stack([torch.ones_like(bit), 1 - 2 * bit], 1) / 2 ** 0.5
        if missing is not None:
            out = torch.where(missing.bool()[:, None], torch.zeros_like(out), out)
        return out

    def embed(self, inputs):
        return inputs


def test_protocol_scores_the_mip_and_reports_baselines() -> None:
    splits = _xor_splits()
    protocol = TupleProtocol(splits, TupleSettings(target="c", bootstrap=50), None, seed=0)
    model = XorModel()
    scores, _ = protocol.final(model)
    # MIP(a, b, c) = (1 + s_a s_b s_c) / 2^1.5 with s = 1 - 2 bit: largest exactly when c = a XOR b.
    assert scores["zero_shot_top1"] == 1.0 and scores["candidates"] == 2.0
    assert scores["zero_shot_top1_ci_low"] <= 1.0 == scores["zero_shot_top1_ci_high"]
    assert {"a_top1", "b_top1", "c_top1", "zero_shot_top5"} <= set(scores)
    model.zero_shot_scoring = "sum"  # the same embeddings scored pairwise: (1 + s_a s_c + 1 + s_b s_c) ties or fails
    assert protocol.final(model)[0]["zero_shot_top1"] < 0.75
    baselines = protocol.baselines(XorModel())
    assert set(baselines) == {"random", "untrained"} and baselines["untrained"]["zero_shot_top1"] == 1.0
    assert protocol.columns()[:2] == ["zero_shot_top1", "zero_shot_top5"] and "c from a, b" in protocol.describe()


def test_missing_query_fields_are_scored_from_the_placeholder() -> None:
    splits = _xor_splits()
    protocol = TupleProtocol(splits, TupleSettings(target="c", missing_fraction=1.0, bootstrap=0), None, seed=0)
    scores, _ = protocol.final(XorModel())
    # every query field missing -> the zero placeholder embedding -> all candidates tie -> every rank counts against
    assert scores["zero_shot_top1"] == 1.0 and scores["zero_shot_top1_missing"] == 0.0
    assert protocol.columns()[-1] == "zero_shot_top1_missing"


def test_protocol_rejects_an_unknown_target() -> None:
    with pytest.raises(ValueError, match="eval.target: expected one of the data's fields a, b, c"):
        TupleProtocol(_xor_splits(), TupleSettings(target="image"), None, seed=0)


def test_tuple_dataset_batches_placeholders_and_errors() -> None:
    images = torch.rand(3, 3, 4, 4)
    data = TupleDataset({"image": images, "text": ["x", "y", "z"]},
                        {"image": torch.tensor([0, 1, 2, 0]), "text": torch.tensor([2, 1, 0, 0])},
                        missing={"text": torch.tensor([False, True, False, False])})
    assert data.kinds == {"image": "image", "text": "text"} and len(data) == 4
    batch = data.__getitems__([0, 1])
    assert batch.inputs["text"] == ["z", MISSING_TEXT] and batch.inputs["missing"]["image"].tolist() == [False, False]
    torch.testing.assert_close(data.tables["image"][data.placeholder_index["image"]], images.mean(0))
    override = data.batch(torch.tensor([0]), missing={"image": torch.tensor([True])})
    torch.testing.assert_close(override.inputs["image"][0], images.mean(0))
    with pytest.raises(ValueError, match="indexes outside its table"):
        TupleDataset({"a": torch.eye(2), "b": torch.eye(2)}, {"a": torch.tensor([0, 2]), "b": torch.tensor([0, 1])})
    with pytest.raises(ValueError, match="at least 2 fields"):
        TupleDataset({"a": torch.eye(2)}, {"a": torch.tensor([0])})
    with pytest.raises(ValueError, match="reserved"):
        TupleDataset({"a": torch.eye(2), "missing": torch.eye(2)}, {"a": torch.tensor([0]), "missing": torch.tensor([0])})


def test_random_baseline_is_near_chance() -> None:
    generator = torch.Generator().manual_seed(2)
    rows = 400
    data = TupleDataset({"a": torch.eye(20), "b": torch.eye(20), "c": torch.eye(20)},
                        {key: torch.randint(20, (rows,), generator=generator) for key in "abc"})
    splits = DatasetSplits(train=data, test=data, num_classes=0, input_shape=(20,), modality="tuples")
    random = TupleProtocol(splits, TupleSettings(target="a", bootstrap=0), None, seed=0).baselines(XorModel())["random"]
    assert abs(random["zero_shot_top1"] - 1 / 20) < 0.04
