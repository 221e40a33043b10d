"""Graph contrastive methods: GRACE (+ POT), BGRL and D-SLA on nodes, GraphCL on graphs.

Node-level methods train on the neighbour-sampled subgraphs of
:class:`contrastkit.data.graph.NodeDataset`: a batch's ``inputs`` is a PyG ``Data`` whose
first ``batch_size`` nodes are the seeds. Both views are encoded over the whole subgraph
and the objective sees the seed rows only, so every seed's embedding has its full sampled
receptive field. ``embed(graph)`` runs the encoder on a whole graph (inference).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.functional import negative_cosine
from contrastkit.functional.graph import grace_loss, graphcl_loss
from contrastkit.methods.base import Method, Output
from contrastkit.nn.gnn import graph_readout
from contrastkit.nn.momentum import MomentumEncoder


def _seed_count(data: Any) -> int:
    size = getattr(data, "batch_size", None)
    count = int(size) if size is not None else int(data.num_nodes)
    if count < 2:
        raise ValueError(f"a node batch needs at least 2 seed nodes to have negatives, got {count}")
    return count


class NodeContrastMethod(Method):
    """Base of node-level graph methods: an encoder, two graph views, seed-row objectives.

    Args:
        encoder: a graph encoder (e.g. :class:`contrastkit.nn.gnn.GNNEncoder`) with ``output_dim``.
        views: ``(view_a, view_b)``, modules mapping a ``Data`` to an augmented ``Data``.
    """

    modalities = frozenset({"graph"})

    def __init__(self, encoder: nn.Module, views: tuple[nn.Module, nn.Module]) -> None:
        super().__init__()
        if len(views) != 2:
            raise ValueError(f"{type(self).__name__}: expected a pair of graph views, got {len(views)}")
        if not hasattr(encoder, "output_dim"):
            raise ValueError(f"{type(self).__name__}: the encoder needs an 'output_dim' attribute")
        self.encoder = encoder
        self.view_a, self.view_b = views

    def check_batch(self, batch: Batch) -> None:
        if not hasattr(batch.inputs, "edge_index"):
            raise ValueError(
                f"{type(self).__name__}: expected a graph batch (a PyG Data from a NodeDataset), "
                f"got {type(batch.inputs).__name__}"
            )
        _seed_count(batch.inputs)

    @torch.no_grad()
    def embed(self, inputs: Any) -> torch.Tensor:
        """Node embeddings ``[N, D]`` of a whole graph, no augmentation."""
        return self.encoder(inputs)


class GRACE(NodeContrastMethod):
    """GRACE (Zhu et al., 2020): node-level InfoNCE across two views, intra-view negatives too.

    Views drop edges and mask feature columns (``views/graph.py`` preset ``grace``); a
    two-layer ELU projector feeds :func:`~contrastkit.functional.graph.grace_loss`.

    With ``pot_weight = κ > 0`` the loss becomes POT's (Yu et al., 2023)
    ``(1 - κ) L_GRACE + κ (L_POT¹ + L_POT²) / 2``, where ``L_POT`` pushes up a certified lower
    bound on each seed node's compactness over every edge-drop augmentation within
    ``pot_drop_rate`` (:mod:`contrastkit.functional.pot_bounds`; needs a ReLU GCN encoder).
    ``pot_variant="official"`` uses the official code's score instead (not a bound).

    Args:
        encoder: graph encoder (GRACE: 2-layer GCN).
        views: the two graph views.
        projection_dim: projector hidden and output width (GRACE: equal to the encoder's).
        temperature: ``τ`` (GRACE: 0.4 Cora, 0.5+ elsewhere).
        pot_weight: POT's ``κ`` (0 disables POT; its README runs 0.2-0.4).
        pot_drop_rate: the edge-drop budget the POT bound covers (each node may lose
            ``ceil(rate * degree)`` edges); ``None``: each view's own ``edge_drop`` rate.
        pot_nodes: at most this many seed nodes enter the POT term (POT's ``pot_batch``; the
            linear bound costs memory per 2-hop path ending at them). Sound variant only.
        pot_variant: ``"sound"`` (default): the certificate over every augmentation within
            the ``ceil`` budget, whole batch graph, the first ``pot_nodes`` seeds; the
            default because it is a bound, which is what POT claims to train.
            ``"official"``: the official code's score (``method="pot"``) at each view's
            sampled edges with its ``min(round(·), d - 1)`` budget, over every node of the
            batch graph (the official default ``pot_batch=-1`` scores every node).
    """

    def __init__(
        self,
        encoder: nn.Module,
        views: tuple[nn.Module, nn.Module],
        *,
        projection_dim: int | None = None,
        temperature: float = 0.5,
        pot_weight: float = 0.0,
        pot_drop_rate: float | None = None,
        pot_nodes: int = 256,
        pot_variant: str = "sound",
    ) -> None:
        super().__init__(encoder, views)
        width = encoder.output_dim
        projection_dim = width if projection_dim is None else projection_dim
        self.projector = nn.Sequential(nn.Linear(width, projection_dim), nn.ELU(), nn.Linear(projection_dim, width))
        if temperature <= 0:
            raise ValueError(f"GRACE: expected temperature > 0, got {temperature}")
        if not 0.0 <= pot_weight < 1.0:
            raise ValueError(f"GRACE: expected pot_weight (POT's kappa) in [0, 1), got {pot_weight}")
        if pot_weight > 0:
            if not hasattr(encoder, "gcn_layers"):
                raise ValueError("GRACE: pot_weight > 0 needs a GCN encoder with gcn_layers() (encoder name 'gcn')")
            encoder.gcn_layers()  # raises a clear error for GAT/GIN/PReLU/batch-norm encoders
        self.temperature = temperature
        if pot_variant not in ("sound", "official"):
            raise ValueError(f"GRACE: expected pot_variant 'sound' or 'official', got {pot_variant!r}")
        self.pot_weight, self.pot_drop_rate, self.pot_nodes = pot_weight, pot_drop_rate, pot_nodes
        self.pot_variant = pot_variant

    def forward(self, batch: Batch) -> Output:
        self.check_batch(batch)
        data = batch.inputs
        seeds = _seed_count(data)
        view_a, view_b = self.view_a(data), self.view_b(data)
        h_a, h_b = self.encoder(view_a), self.encoder(view_b)
        z_a, z_b = self.projector(h_a), self.projector(h_b)
        contrast = grace_loss(z_a[:seeds], z_b[:seeds], self.temperature)
        logs = {"grace": contrast.item()}
        loss = contrast
        if self.pot_weight > 0:
            pot, compactness = self._pot_term(data, view_a, view_b, h_a, h_b, seeds)
            loss = (1 - self.pot_weight) * contrast + self.pot_weight * pot
            logs.update({"pot": pot.item(), "compactness_bound": compactness})
        logs["loss"] = loss.item()
        return Output(loss, logs)

    def _drop_rate(self, view: nn.Module) -> float:
        if self.pot_drop_rate is not None:
            return float(self.pot_drop_rate)
        return float(getattr(view, "edge_drop", 0.0))

    def _pot_term(self, data: Any, view_a: Any, view_b: Any, h_a: torch.Tensor, h_b: torch.Tensor,
                  seeds: int) -> tuple[torch.Tensor, float]:
        """POT's ``(L_POT¹ + L_POT²) / 2``, and the mean score.

        Sound: ``L_POT¹`` certifies view 1's features on *every* edge-drop augmentation of the
        batch graph within view 1's budget against view 2's embeddings (the first
        ``pot_nodes`` seeds), and the reverse for ``L_POT²``. Official: view 1's score at
        view 1's sampled edges (``view_edge_index``), the official budget, every node.
        """
        from contrastkit.functional.pot import pot_loss
        from contrastkit.functional.pot_bounds import pot_node_compactness

        layers = self.encoder.gcn_layers()
        if self.pot_variant == "official":
            options = {"method": "pot", "rounding": "pot"}
            views = {"a": {"view_edge_index": view_a.edge_index}, "b": {"view_edge_index": view_b.edge_index}}
        else:
            options = {"nodes": torch.arange(min(seeds, self.pot_nodes), device=h_a.device)}
            views = {"a": {}, "b": {}}
        bound_a = pot_node_compactness(view_a.x, data.edge_index, layers, h_b, drop_rate=self._drop_rate(self.view_a),
                                       **options, **views["a"])
        bound_b = pot_node_compactness(view_b.x, data.edge_index, layers, h_a, drop_rate=self._drop_rate(self.view_b),
                                       **options, **views["b"])
        pot = (pot_loss(bound_a) + pot_loss(bound_b)) / 2
        return pot, float(torch.cat([bound_a, bound_b]).mean().detach())


class BGRL(NodeContrastMethod):
    """BGRL (Thakoor et al., 2022): bootstrapped node representations, no negatives.

    An online encoder + predictor regress an EMA target encoder's embedding of the other
    view (symmetric negative cosine on the seed nodes); the momentum follows BYOL's cosine
    schedule from ``base_momentum`` to ``final_momentum``.

    Args:
        encoder: graph encoder (BGRL: GCN with batch norm and PReLU).
        views: the two graph views (preset ``bgrl``).
        predictor_hidden_dim: the predictor MLP's hidden width (BGRL: 512).
        base_momentum: EMA momentum at step 0 (BGRL: 0.99).
        final_momentum: at the last step (1.0).
    """

    def __init__(
        self,
        encoder: nn.Module,
        views: tuple[nn.Module, nn.Module],
        *,
        predictor_hidden_dim: int = 512,
        base_momentum: float = 0.99,
        final_momentum: float = 1.0,
    ) -> None:
        super().__init__(encoder, views)
        width = encoder.output_dim
        self.predictor = nn.Sequential(
            nn.Linear(width, predictor_hidden_dim), nn.BatchNorm1d(predictor_hidden_dim), nn.PReLU(),
            nn.Linear(predictor_hidden_dim, width),
        )  # fmt: skip
        self.target = MomentumEncoder(encoder, base_momentum=base_momentum, final_momentum=final_momentum)

    def forward(self, batch: Batch) -> Output:
        self.check_batch(batch)
        data = batch.inputs
        seeds = _seed_count(data)
        view_a, view_b = self.view_a(data), self.view_b(data)
        p_a = self.predictor(self.encoder(view_a)[:seeds])
        p_b = self.predictor(self.encoder(view_b)[:seeds])
        with torch.no_grad():
            t_a, t_b = self.target(view_a)[:seeds], self.target(view_b)[:seeds]
        loss = negative_cosine(p_a, t_b) + negative_cosine(p_b, t_a)
        return Output(loss, {"loss": loss.item(), "momentum": self.target.last_momentum})

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.target.update(self.encoder, step, total_steps)


class DSLA(NodeContrastMethod):
    """D-SLA (Kim et al., 2022) adapted to nodes: a node's sampled ego-graph is its "graph".

    Each step perturbs the batch subgraph ``num_perturbations`` times, the i-th (i = 1..n)
    removing an ``i × perturb_strength`` fraction of the edges and adding as many random
    non-edges, as the official code with edit-distance learning (``curr_pert_num = pert_num * i``;
    ``graded=False`` gives every perturbation the same strength), then ``view_b``'s feature
    masking; the original gets ``view_a``, which should mask features alike (the official
    pipelines mask every candidate, the original included, so that only edges tell them apart). For every seed node ``s`` the edit distance ``e_i(s)`` is
    the number of edited edges inside its receptive field
    (:func:`~contrastkit.functional.dsla.receptive_field_edit_counts`), and the objective is
    D-SLA's: tell the original ego-graph from its perturbations with a score head, keep
    embedding distances proportional to edit distances, and keep other nodes at least
    ``margin`` further away than any perturbation
    (:func:`~contrastkit.functional.dsla.dsla_loss`). Seeds whose receptive field no
    perturbation touched (``e = 0``, nothing to be proportional to) are left out of the batch's loss.

    Args:
        encoder: graph encoder (D-SLA: GIN; a GCN counts one hop further, its normalisation
            reads the edited node's degree).
        views: ``(view_a, view_b)``: applied to the original and to each perturbed graph.
        num_perturbations: ``n`` (D-SLA: 3).
        perturb_strength: fraction of edges the first perturbation edits (D-SLA: 0.2).
        graded: the i-th perturbation edits ``i ×`` that fraction (official); ``False``: all the same.
        lambda1: weight of the edit-distance term (0.7).
        lambda2: weight of the margin term (0.5).
        margin: ``α`` (5 for molecules, 10 for proteins).
    """

    def __init__(
        self,
        encoder: nn.Module,
        views: tuple[nn.Module, nn.Module],
        *,
        num_perturbations: int = 3,
        perturb_strength: float = 0.2,
        lambda1: float = 0.7,
        lambda2: float = 0.5,
        margin: float = 5.0,
        graded: bool = True,
    ) -> None:
        super().__init__(encoder, views)
        if num_perturbations < 1:
            raise ValueError(f"DSLA: expected num_perturbations >= 1, got {num_perturbations}")
        if not 0.0 < perturb_strength < 1.0:
            raise ValueError(f"DSLA: expected perturb_strength in (0, 1), got {perturb_strength}")
        strongest = perturb_strength * (num_perturbations if graded else 1)
        if strongest >= 1.0:
            raise ValueError(f"DSLA: the strongest perturbation would edit {strongest:g} of the edges "
                             f"(num_perturbations × perturb_strength); expected < 1")
        width = encoder.output_dim
        # two hidden layers, as the official score_func (Linear-ReLU-Linear-ReLU-Linear)
        self.score_head = nn.Sequential(
            nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 1)
        )
        self.strengths = [perturb_strength * ((i + 1) if graded else 1) for i in range(num_perturbations)]
        self.num_perturbations, self.perturb_strength = num_perturbations, perturb_strength
        self.lambda1, self.lambda2, self.margin = lambda1, lambda2, margin
        self.num_layers = int(getattr(encoder, "num_layers", 2))
        self.degree_normalized = getattr(encoder, "conv", "gcn") == "gcn"

    def forward(self, batch: Batch) -> Output:
        from contrastkit.functional.dsla import dsla_loss, receptive_field_edit_counts
        from contrastkit.views.graph import perturb_edges

        self.check_batch(batch)
        data = batch.inputs
        seeds, nodes = _seed_count(data), int(data.num_nodes)
        h0 = self.encoder(self.view_a(data))[:seeds]
        perturbed, edits = [], []
        for strength in self.strengths:
            edge_index, edited = perturb_edges(data.edge_index, nodes, strength)
            graph = data.clone()
            graph.edge_index = edge_index
            for key in ("e_id", "edge_weight", "edge_attr"):  # per-edge attributes no longer match
                if key in graph:
                    del graph[key]
            perturbed.append(self.encoder(self.view_b(graph))[:seeds])
            counts = receptive_field_edit_counts(edited, data.edge_index, nodes, self.num_layers,
                                                 degree_normalized=self.degree_normalized)
            edits.append(counts[:seeds])
        h_perturbed = torch.stack(perturbed, dim=1)
        edit_distance = torch.stack(edits, dim=1).to(h0.dtype)
        keep = (edit_distance > 0).all(dim=1)
        if int(keep.sum()) < 2:
            raise ValueError(
                f"DSLA: fewer than 2 of {seeds} seed nodes had an edited edge in their receptive field; "
                "raise perturb_strength or the neighbour counts"
            )
        h0, h_perturbed, edit_distance = h0[keep], h_perturbed[keep], edit_distance[keep]
        scores = self.score_head(torch.cat([h0.unsqueeze(1), h_perturbed], dim=1)).squeeze(-1)
        loss, parts = dsla_loss(h0, h_perturbed, scores, edit_distance, lambda1=self.lambda1, lambda2=self.lambda2,
                                margin=self.margin)
        logs = {name: float(value) for name, value in parts.items()}
        logs.update({"loss": loss.item(), "edited_seed_fraction": float(keep.float().mean())})
        return Output(loss, logs)


class GraphCL(Method):
    """GraphCL (You et al., 2020): graph-level contrast of two augmented views of each graph.

    Node embeddings are pooled per graph (sum, as GraphCL's GIN readout), projected by a
    two-layer MLP, and contrasted with :func:`~contrastkit.functional.graph.graphcl_loss`.
    Views that drop nodes mark them in ``node_mask``; the readout skips them.

    Args:
        encoder: node encoder (GraphCL: GIN).
        views: the two graph views (preset ``graphcl``: node dropping and subgraphs).
        projection_dim: the projector's width.
        temperature: ``τ`` (GraphCL: 0.2).
        readout: ``sum`` (GraphCL) or ``mean``.
    """

    modalities = frozenset({"graphs"})

    def __init__(
        self,
        encoder: nn.Module,
        views: tuple[nn.Module, nn.Module],
        *,
        projection_dim: int = 128,
        temperature: float = 0.2,
        readout: str = "sum",
    ) -> None:
        super().__init__()
        if len(views) != 2:
            raise ValueError(f"GraphCL: expected a pair of graph views, got {len(views)}")
        if readout not in ("sum", "mean"):
            raise ValueError(f"GraphCL: expected readout 'sum' or 'mean', got {readout!r}")
        self.encoder = encoder
        self.view_a, self.view_b = views
        width = encoder.output_dim
        self.projector = nn.Sequential(nn.Linear(width, projection_dim), nn.ReLU(),
                                       nn.Linear(projection_dim, projection_dim))
        self.temperature, self.readout = temperature, readout

    def _pool(self, data: Any) -> torch.Tensor:
        h = self.encoder(data)
        batch = getattr(data, "batch", None)
        num_graphs = getattr(data, "num_graphs", None)
        return graph_readout(h, batch, num_graphs=num_graphs, node_mask=getattr(data, "node_mask", None),
                             mode=self.readout)

    def forward(self, batch: Batch) -> Output:
        data = batch.inputs
        if getattr(data, "num_graphs", 0) < 2:
            raise ValueError(f"GraphCL: a batch needs at least 2 graphs, got {getattr(data, 'num_graphs', 0)}")
        z_a = self.projector(self._pool(self.view_a(data)))
        z_b = self.projector(self._pool(self.view_b(data)))
        loss = graphcl_loss(z_a, z_b, self.temperature)
        return Output(loss, {"loss": loss.item()})

    @torch.no_grad()
    def embed(self, inputs: Any) -> torch.Tensor:
        """Graph embeddings ``[G, D]`` (pooled node embeddings, no augmentation)."""
        return self._pool(inputs)
