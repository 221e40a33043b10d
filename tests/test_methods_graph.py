"""Graph methods: each composes its parts as its paper says, on small graphs."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("torch_geometric")

from contrastkit.data import load_dataset  # noqa: E402
from contrastkit.functional.graph import grace_loss  # noqa: E402
from contrastkit.methods import build_method  # noqa: E402
from contrastkit.nn.gnn import GNNEncoder  # noqa: E402
from contrastkit.views.graph import build_graph_views  # noqa: E402


@pytest.fixture(scope="module")
def karate():
    return load_dataset("karate-club")


def _batch(splits, seeds: int = 20):
    torch.manual_seed(0)
    return splits.train.__getitems__(list(range(seeds)))


def _method(name: str, conv: str = "gcn", preset: str = "grace", **options):
    torch.manual_seed(0)
    encoder = GNNEncoder(34, output_dim=16, hidden_dim=32, conv=conv)
    return build_method(name, encoder, build_graph_views(preset), **options)


def test_grace_loss_is_the_grace_objective_on_the_seed_rows(karate) -> None:
    method = _method("grace", preset="none", temperature=0.5)
    batch = _batch(karate)
    data = batch.inputs
    output = method(batch)
    h = method.projector(method.encoder(data))
    expected = grace_loss(h[: data.batch_size], h[: data.batch_size], 0.5)
    torch.testing.assert_close(output.loss, expected)
    output.loss.backward()
    assert method.encoder.convs[0].lin.weight.grad is not None


def test_grace_with_pot_mixes_the_terms_with_kappa(karate) -> None:
    kappa = 0.3
    method = _method("grace", pot_weight=kappa, pot_nodes=8)
    batch = _batch(karate)
    torch.manual_seed(1)
    output = method(batch)
    assert {"grace", "pot", "compactness_bound"} <= set(output.logs)
    expected = (1 - kappa) * output.logs["grace"] + kappa * output.logs["pot"]
    assert output.loss.item() == pytest.approx(expected, rel=1e-5)
    output.loss.backward()
    with pytest.raises(ValueError, match="ReLU GCN"):
        _method("grace", conv="gat", pot_weight=0.2)


def test_pot_term_raises_the_certified_compactness(karate) -> None:
    # POT's mechanistic claim (METHODS.md #18 check a): optimising the bound raises it.
    method = _method("grace", pot_weight=0.9, pot_nodes=20)
    optimizer = torch.optim.Adam(method.parameters(), lr=1e-2)
    batch = _batch(karate, 34)
    bounds = []
    for step in range(30):
        torch.manual_seed(step)
        output = method(batch)
        bounds.append(output.logs["compactness_bound"])
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
    assert sum(bounds[-5:]) / 5 > sum(bounds[:5]) / 5


def test_grace_official_pot_scores_each_sampled_view_with_the_official_budget(karate) -> None:
    from contrastkit.functional.pot import pot_loss
    from contrastkit.functional.pot_bounds import pot_node_compactness

    method = _method("grace", pot_weight=0.3, pot_variant="official")
    batch = _batch(karate)
    data = batch.inputs
    torch.manual_seed(3)
    output = method(batch)
    torch.manual_seed(3)  # the same two views again, in forward's order
    view_a, view_b = method.view_a(data), method.view_b(data)
    assert view_a.edge_index.shape[1] < data.edge_index.shape[1]  # the views did drop edges
    h_a, h_b = method.encoder(view_a), method.encoder(view_b)
    layers = method.encoder.gcn_layers()
    expected = []
    for view, other, rate in ((view_a, h_b, method.view_a.edge_drop), (view_b, h_a, method.view_b.edge_drop)):
        score = pot_node_compactness(view.x, data.edge_index, layers, other, drop_rate=rate, method="pot",
                                     rounding="pot", view_edge_index=view.edge_index)
        assert score.shape == (data.num_nodes,)  # every node of the batch graph, as pot_batch=-1
        expected.append(pot_loss(score))
    assert output.logs["pot"] == pytest.approx(float((expected[0] + expected[1]) / 2), rel=1e-5)
    sound = _method("grace", pot_weight=0.3)
    torch.manual_seed(3)
    assert sound(batch).logs["pot"] != pytest.approx(output.logs["pot"], rel=1e-3)
    output.loss.backward()
    with pytest.raises(ValueError, match="pot_variant 'sound' or 'official'"):
        _method("grace", pot_weight=0.3, pot_variant="crown")


def test_bgrl_moves_only_the_online_network_by_gradient(karate) -> None:
    method = _method("bgrl", preset="bgrl", predictor_hidden_dim=8)
    output = method(_batch(karate))
    output.loss.backward()
    assert all(p.grad is None for p in method.target.parameters())
    before = [p.clone() for p in method.target.parameters()]
    with torch.no_grad():
        for p in method.encoder.parameters():
            p.add_(1.0)
    method.on_step_end(0, 10)
    moved = [not torch.equal(a, b) for a, b in zip(before, method.target.parameters())]
    assert all(moved)


def test_dsla_scores_perturbations_and_logs_its_parts(karate) -> None:
    method = _method("dsla", preset="none", num_perturbations=3, perturb_strength=0.3)
    torch.manual_seed(0)
    output = method(_batch(karate, 34))
    assert {"discrimination", "edit_distance", "margin", "edited_seed_fraction"} <= set(output.logs)
    assert torch.isfinite(output.loss)
    output.loss.backward()
    assert method.score_head[0].weight.grad is not None
    with pytest.raises(ValueError, match="perturb_strength"):
        _method("dsla", perturb_strength=0.0)


def test_dsla_grades_its_perturbations_as_the_official_edit_learning(karate, monkeypatch) -> None:
    import contrastkit.views.graph as graph_views

    strengths = []
    perturb = graph_views.perturb_edges

    def recording(edge_index, num_nodes, strength, *args, **kwargs):
        strengths.append(strength)
        return perturb(edge_index, num_nodes, strength, *args, **kwargs)

    monkeypatch.setattr(graph_views, "perturb_edges", recording)
    _method("dsla", preset="none", num_perturbations=3, perturb_strength=0.1)(_batch(karate, 34))
    assert strengths == pytest.approx([0.1, 0.2, 0.3])  # the i-th perturbation i times stronger
    strengths.clear()
    _method("dsla", preset="none", num_perturbations=3, perturb_strength=0.1, graded=False)(_batch(karate, 34))
    assert strengths == pytest.approx([0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match="strongest perturbation"):
        _method("dsla", num_perturbations=3, perturb_strength=0.4)


def test_dsla_recipe_masks_the_original_like_its_perturbations() -> None:
    from contrastkit.train.config import load_config

    views = load_config("dsla-debian")["views"]
    assert views.get("feature_mask_1", 0.0) == views.get("feature_mask_2", 0.0) > 0


def test_graphcl_pools_graphs_and_embeds_one_row_per_graph() -> None:
    splits = load_dataset("synthetic-graphs", num_graphs=24)
    torch.manual_seed(0)
    encoder = GNNEncoder(splits.input_shape[0], output_dim=16, conv="gin", num_layers=2)
    method = build_method("graphcl", encoder, build_graph_views("graphcl"), projection_dim=8)
    batch = splits.train.__getitems__(list(range(8)))
    output = method(batch)
    output.loss.backward()
    assert method.embed(batch.inputs).shape == (8, 16)


def test_node_methods_refuse_non_graph_batches(karate) -> None:
    from contrastkit.data.batch import Batch

    with pytest.raises(ValueError, match="graph batch"):
        _method("grace")(Batch(inputs=torch.randn(4, 34)))
