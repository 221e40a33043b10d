"""Pairwise MER (#29): the loss against a loop over pairs, the fused embedding, the channel-groups
data and modality, training on BasicMotions, and gradient caching."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.data import load_dataset
from contrastkit.data.batch import Batch
from contrastkit.data.channel_groups import ChannelGroupSplits, check_channel_groups
from contrastkit.methods import build_method, method_options
from contrastkit.methods.pairwise_mer import PairwiseMER
from contrastkit.modalities import check_method, modality_of
from contrastkit.nn.channel_groups import build_channel_group_towers
from contrastkit.nn.registry import build_encoder
from contrastkit.train.grad_cache import grad_cache_backward
from contrastkit.train.trainer import TrainConfig, Trainer
from contrastkit.views.series import build_series_views

#: Deterministic small towers (no timestamp masking, no dropout): identical steps to compare.
TOWER = {"output_dim": 8, "hidden_dim": 8, "depth": 2, "mask_mode": "all_true", "dropout": 0.0}
THREE = {"a": [0, 1], "b": [2], "c": [3, 4, 5]}


def make_mer(groups=None, **options) -> PairwiseMER:
    torch.manual_seed(0)
    towers = build_channel_group_towers(6, channel_groups=groups or THREE, tower_options=TOWER)
    return PairwiseMER(towers, build_series_views("identity")[:1], projection_hidden_dim=16, **options)


@pytest.fixture(scope="module")
def basicmotions() -> ChannelGroupSplits:
    return load_dataset("channel-groups")  # BasicMotions' known layout, loaded once (aeon parses slowly)


def slow_pairwise_loss(parts: list[torch.Tensor], tau: float) -> float:
    """Mean over pairs (m < n) of (InfoNCE(m -> n) + InfoNCE(n -> m)) / 2, one row at a time."""
    z = [part / part.norm(dim=1, keepdim=True) for part in parts]
    rows, pairs = z[0].shape[0], []
    for m in range(len(z)):
        for n in range(m + 1, len(z)):
            directions = []
            for a, b in ((z[m], z[n]), (z[n], z[m])):
                total = 0.0
                for i in range(rows):
                    logits = [float(a[i] @ b[j]) / tau for j in range(rows)]
                    total += -(logits[i] - math.log(sum(math.exp(v) for v in logits)))
                directions.append(total / rows)
            pairs.append(sum(directions) / 2)
    return sum(pairs) / len(pairs)


def test_registered_with_the_official_defaults():
    assert set(method_options("pairwise-mer")) == {
        "projection_hidden_dim", "projection_dim", "temperature", "learn_temperature", "reduction"}
    method = make_mer()
    assert math.isclose(float(method.logit_scale), 1 / 0.07, rel_tol=1e-6)
    assert not method.log_logit_scale.requires_grad  # fixed tau, as the official code
    # Official heads: Linear(D, 1024) -> ReLU -> Linear(1024, D), no batch norm.
    default = build_method("pairwise-mer", build_channel_group_towers(6, channel_groups=THREE, tower_options=TOWER),
                           build_series_views("identity")[:1])
    layers = list(default.heads[0].layers)
    assert [type(layer).__name__ for layer in layers] == ["Linear", "ReLU", "Linear"]
    assert (layers[0].in_features, layers[0].out_features, layers[2].out_features) == (8, 1024, 8)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_loss_equals_a_loop_over_pairs_and_rows(reduction):
    method = make_mer(reduction=reduction)
    batch = Batch(torch.randn(5, 6, 12, generator=torch.Generator().manual_seed(1)))
    parts = [part.detach() for part in method.embeddings(batch)]
    expected = slow_pairwise_loss(parts, 0.07) * (3 if reduction == "sum" else 1)
    assert math.isclose(float(method(batch).loss.detach()), expected, rel_tol=1e-5)


def test_embed_is_the_concatenation_of_the_towers_before_the_heads():
    method = make_mer().eval()
    x = torch.randn(4, 6, 20)
    fused = method.embed(x)
    assert fused.shape == (4, 24) and method.encoder.group_names == ["a", "b", "c"]
    towers = method.encoder.towers
    with torch.no_grad():
        expected = torch.cat([towers["a"](x[:, [0, 1]]), towers["b"](x[:, [2]]), towers["c"](x[:, [3, 4, 5]])], dim=1)
    torch.testing.assert_close(fused, expected)


def test_the_loss_reaches_every_tower_and_head_and_nothing_else_needs_labels():
    method = make_mer()
    method(Batch(torch.randn(6, 6, 16))).loss.backward()
    for name in ("a", "b", "c"):
        assert method.encoder.towers[name].encoder.input_fc.weight.grad.abs().sum() > 0
    assert all(head.layers[0].weight.grad is not None for head in method.heads)
    assert method.log_logit_scale.grad is None


def test_gradient_cache_equals_the_plain_step():
    batch = Batch(torch.randn(8, 6, 16, generator=torch.Generator().manual_seed(2)))
    plain, cached = make_mer(), make_mer()
    plain(batch).loss.backward()
    grad_cache_backward(cached, batch, micro_batch_size=3, device=torch.device("cpu"))
    got = {n: p.grad for n, p in cached.named_parameters() if p.grad is not None}
    expected = {n: p.grad for n, p in plain.named_parameters() if p.grad is not None}
    assert got.keys() == expected.keys() and len(got) > 10
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], atol=1e-6, rtol=1e-5)


def test_channel_groups_data_of_basicmotions_and_its_modality(basicmotions):
    splits = basicmotions
    assert isinstance(splits, ChannelGroupSplits) and splits.modality == "channel-groups"
    assert splits.channel_groups == {"accelerometer": [0, 1, 2], "gyroscope": [3, 4, 5]}
    assert splits.train.inputs.shape == (40, 6, 100) and splits.num_classes == 4
    modality = check_method("pairwise-mer", splits)
    assert modality.encoder_arguments(splits) == {"in_channels": 6, "channel_groups": splits.channel_groups}
    assert len(modality.build_views({"preset": "identity"}, splits, None)) == 1
    with pytest.raises(ValueError, match="method 'simclr' trains on"):
        check_method("simclr", splits)  # one view per row, not two: the generic two-view methods do not apply
    with pytest.raises(ValueError, match="method 'pairwise-mer' trains on 'channel-groups'"):
        check_method("pairwise-mer", load_dataset("uea:BasicMotions"))


def test_protocol_scores_fused_and_each_modality(basicmotions):
    splits = basicmotions
    method = build_method("pairwise-mer", build_encoder("channel-group-towers", **modality_of(splits).encoder_arguments(
        splits), tower_options=TOWER), build_series_views("identity")[:1], projection_hidden_dim=16)
    protocol = modality_of(splits).build_protocol(splits, {"knn_k": 5}, torch.device("cpu"), 0)
    learned, features = protocol.final(method)
    assert features.shape == (40, 16)
    for key in ("svm_accuracy", "accelerometer:svm_accuracy", "gyroscope:linear_top1"):
        assert 0.0 <= learned[key] <= 1.0
    assert "gyroscope:svm_accuracy" in protocol.columns()
    quick = modality_of(splits).build_protocol(splits, {"knn_k": 5, "linear": False}, torch.device("cpu"), 0)
    assert set(quick.baselines(method)["random_init"]) >= {"accelerometer:knn_top1", "gyroscope:knn_top1", "knn_top1"}


def test_trains_on_basicmotions_and_the_loss_drops(tmp_path, basicmotions):
    splits = basicmotions
    torch.manual_seed(0)
    method = make_mer({"accelerometer": [0, 1, 2], "gyroscope": [3, 4, 5]})
    result = Trainer(method, splits.train, TrainConfig(batch_size=16, steps=30, lr=3e-3, progress=False,
                                                       checkpoint_every=0), tmp_path).fit()
    losses = [record["loss"] for record in result.history]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.1
    assert method.embed(splits.test.inputs[:3]).shape == (3, 16)


@pytest.mark.parametrize(("groups", "message"), [
    ({"a": [0, 1, 2]}, "at least 2 group"),
    ({"a": [0, 1], "b": [1, 2]}, "channel 1 is in both 'a' and 'b'"),
    ({"a": [0], "b": [6]}, "channel 6 is outside the series' 6 channels"),
    ({"a": [], "b": [1]}, "data.groups.a: expected a non-empty list"),
])
def test_bad_channel_groups_fail_in_one_line(groups, message):
    with pytest.raises(ValueError, match=message):
        check_channel_groups(groups, 6, key="data.groups")


def test_dataset_and_method_errors():
    with pytest.raises(ValueError, match="data.groups: expected .* for 'ucr:GunPoint'"):
        load_dataset("channel-groups", source="ucr:GunPoint")
    with pytest.raises(ValueError, match="data.source: expected a series dataset"):
        load_dataset("channel-groups", source="digits", groups={"a": [0], "b": [1]})
    towers = build_channel_group_towers(6, channel_groups=THREE, tower_options=TOWER)
    with pytest.raises(ValueError, match="one view"):
        PairwiseMER(towers, build_series_views("identity"))
    with pytest.raises(ValueError, match="method.reduction"):
        PairwiseMER(towers, build_series_views("identity")[:1], reduction="max")
    with pytest.raises(ValueError, match="channel-group-towers"):
        PairwiseMER(build_encoder("ts-dilated-conv-pooled", in_channels=6), build_series_views("identity")[:1])
    with pytest.raises(ValueError, match="expected a series batch"):
        make_mer()(Batch(torch.randn(4, 6)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        make_mer()(Batch(torch.randn(1, 6, 10)))
