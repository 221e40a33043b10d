"""D-SLA: discrepancy learning between a graph and its perturbations.

Kim et al., "Graph Self-Supervised Learning with Accurate Discrepancy Learning",
NeurIPS 2022 (https://github.com/DongkiKim95/D-SLA). Instead of pulling perturbed
graphs together, D-SLA learns to tell the original graph ``G_0`` from its
perturbations ``G_1..G_n`` and keeps embedding distances proportional to the graph
edit distance:

.. math::

    L = L_{GD} + \\lambda_1 L_{edit} + \\lambda_2 L_{margin}

* graph discrimination ``L_GD = -log softmax(S(G_0), ..., S(G_n))_0`` with ``S`` a
  score head (:func:`graph_discrimination_loss`);
* edit distance ``L_edit = mean_{i<j} (d_i/e_i - d_j/e_j)^2`` with
  ``d_i = ||h_0 - h_i||`` and ``e_i`` the edit distance of ``G_i``
  (:func:`edit_distance_loss`);
* margin ``L_margin = mean_{i,j} max(0, alpha + d_i - d'_j)`` with ``d'_j`` the
  distances from ``h_0`` to the other original graphs of the batch
  (:func:`margin_loss`).

Defaults are the official chemistry pre-training arguments: ``lambda1 = 0.7``
(``edit_coeff``), ``lambda2 = 0.5`` (``margin_coeff``), ``margin = 5.0`` (10 for
the biology set). The paper writes ``L_edit`` and ``L_margin`` as sums over pairs;
the official code averages (``F.mse_loss`` over the pairs ``i < j``, ``.mean()`` over
``(graph, other graph, perturbation)``), and so do these functions: a constant factor
that the weights absorb. In the official data pipeline ``e_i`` is the number of
removed undirected edges, which equals the number added (so half the number of edited
undirected edges); only ratios ``d_i / e_i`` within a graph matter for ``L_edit``'s
zero set.

:func:`receptive_field_edit_counts` gives node-level edit distances (a node's ego
graph as its "graph"): the number of edited edges that can reach the node's
message-passing output.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from contrastkit.functional.core import reduce
from contrastkit.utils.checks import check_embeddings, check_reduction

__all__ = [
    "perturbation_distances",
    "other_graph_distances",
    "graph_discrimination_loss",
    "edit_distance_loss",
    "margin_loss",
    "dsla_loss",
    "receptive_field_edit_counts",
]

def _check_matrix(name: str, tensor: torch.Tensor, *, rows: int | None = None, min_columns: int = 1) -> None:
    if not isinstance(tensor, torch.Tensor) or tensor.dim() != 2:
        raise ValueError(f"{name}: expected a tensor of shape [B, n], got {getattr(tensor, 'shape', tensor)!r}")
    if not tensor.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor, got dtype {tensor.dtype}")
    if rows is not None and tensor.shape[0] != rows:
        raise ValueError(f"{name}: expected {rows} rows (one per graph), got shape {tuple(tensor.shape)}")
    if tensor.shape[0] < 1 or tensor.shape[1] < min_columns:
        raise ValueError(
            f"{name}: expected at least 1 row and {min_columns} column(s), got shape {tuple(tensor.shape)}"
        )
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name}: expected finite values, got NaN/inf in shape {tuple(tensor.shape)}")


def perturbation_distances(h0: torch.Tensor, h_perturbed: torch.Tensor) -> torch.Tensor:
    """``d[b, i] = ||h0[b] - h_perturbed[b, i]||_2``: how far each perturbation moved.

    Args:
        h0: ``[B, D]`` embeddings of the original graphs.
        h_perturbed: ``[B, n, D]`` embeddings of their perturbations.

    Returns:
        ``[B, n]``.

    Raises:
        ValueError: on mismatched shapes or non-finite values.
    """
    check_embeddings("h0", h0)
    if not isinstance(h_perturbed, torch.Tensor) or h_perturbed.dim() != 3:
        raise ValueError(
            f"h_perturbed: expected shape [B, n, D], got {getattr(h_perturbed, 'shape', h_perturbed)!r}"
        )
    if h_perturbed.shape[0] != h0.shape[0] or h_perturbed.shape[2] != h0.shape[1] or h_perturbed.shape[1] < 1:
        raise ValueError(
            f"h_perturbed: expected shape [{h0.shape[0]}, n >= 1, {h0.shape[1]}] (paired with h0), "
            f"got {tuple(h_perturbed.shape)}"
        )
    if not torch.isfinite(h_perturbed).all():
        raise ValueError("h_perturbed: expected finite values, got NaN/inf")
    return torch.linalg.vector_norm(h_perturbed - h0.unsqueeze(1), dim=-1)


def other_graph_distances(h0: torch.Tensor) -> torch.Tensor:
    """``d'[b, k] = ||h0[b] - h0[b']||_2`` for the ``B - 1`` other graphs ``b' != b``, in order.

    Args:
        h0: ``[B, D]`` embeddings of the original graphs, ``B >= 2``.

    Returns:
        ``[B, B - 1]``.

    Raises:
        ValueError: on fewer than two graphs or non-finite values.
    """
    check_embeddings("h0", h0, min_rows=2)
    batch = h0.shape[0]
    # Differences rather than torch.cdist: the norm's gradient stays exact (cdist's matmul path is approximate).
    distances = torch.linalg.vector_norm(h0.unsqueeze(1) - h0.unsqueeze(0), dim=-1)
    off_diagonal = ~torch.eye(batch, dtype=torch.bool, device=h0.device)
    return distances[off_diagonal].view(batch, batch - 1)


def graph_discrimination_loss(scores: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """``L_GD = -log( exp S(G_0) / sum_{i=0..n} exp S(G_i) )``: pick the original among its perturbations.

    Args:
        scores: ``[B, n + 1]`` scores ``S(G_i)``; column 0 is the original graph.
        reduction: ``'mean'`` (default, as the official ``F.cross_entropy``), ``'sum'``
            or ``'none'`` (``[B]``).

    Returns:
        The loss.

    Raises:
        ValueError: on fewer than two columns, non-finite values or a bad reduction.

    Example:
        >>> graph_discrimination_loss(torch.tensor([[2.0, 0.0, -1.0]]))
        tensor(0.1698)
    """
    check_reduction(reduction)
    _check_matrix("scores", scores, min_columns=2)
    return reduce(-torch.log_softmax(scores, dim=1)[:, 0], reduction)


def edit_distance_loss(
    distances: torch.Tensor, edit_distances: torch.Tensor, *, reduction: str = "mean"
) -> torch.Tensor:
    """``L_edit = mean_{i<j} (d_i/e_i - d_j/e_j)^2`` per graph: distances proportional to edit distances.

    Zero exactly when ``d`` is proportional to ``e`` within every graph (any scale).

    Args:
        distances: ``[B, n]`` embedding distances ``d_i`` (:func:`perturbation_distances`), ``n >= 2``.
        edit_distances: ``[B, n]`` positive edit distances ``e_i`` (integers are accepted).
        reduction: ``'mean'`` (default; the official ``F.mse_loss`` over all graphs and
            pairs), ``'sum'`` or ``'none'`` (``[B]``, the per-graph mean over pairs).

    Returns:
        The loss.

    Raises:
        ValueError: on mismatched shapes, ``n < 2``, non-positive or non-finite edit
            distances.

    Example:
        >>> edit_distance_loss(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[1, 2, 3]]))
        tensor(0.)
    """
    check_reduction(reduction)
    _check_matrix("distances", distances, min_columns=2)
    if not isinstance(edit_distances, torch.Tensor) or tuple(edit_distances.shape) != tuple(distances.shape):
        raise ValueError(
            f"edit_distances: expected shape {tuple(distances.shape)} (one per perturbation), "
            f"got {getattr(edit_distances, 'shape', edit_distances)!r}"
        )
    if edit_distances.dtype == torch.bool or edit_distances.is_complex():
        raise ValueError(f"edit_distances: expected real numbers, got dtype {edit_distances.dtype}")
    edits = edit_distances.to(distances.dtype)
    if not torch.isfinite(edits).all() or not (edits > 0).all():
        raise ValueError("edit_distances: expected finite values > 0 (a perturbation edits something), got others")
    ratio = distances / edits
    first, second = torch.triu_indices(ratio.shape[1], ratio.shape[1], 1, device=ratio.device)
    return reduce((ratio[:, first] - ratio[:, second]).pow(2).mean(1), reduction)


def margin_loss(
    distances: torch.Tensor,
    other_distances: torch.Tensor,
    *,
    margin: float = 5.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """``L_margin = mean_{i,j} max(0, margin + d_i - d'_j)`` per graph: other graphs lie farther than perturbations.

    Args:
        distances: ``[B, n]`` distances ``d_i`` from each original to its perturbations.
        other_distances: ``[B, m]`` distances ``d'_j`` from each original to other
            graphs (:func:`other_graph_distances`: ``m = B - 1``).
        margin: ``alpha >= 0`` (default 5.0, the chemistry default; 10 for biology).
        reduction: ``'mean'`` (default; the official mean over graph, other graph and
            perturbation), ``'sum'`` or ``'none'`` (``[B]``, the per-graph mean).

    Returns:
        The loss.

    Raises:
        ValueError: on mismatched row counts, non-finite values or a negative margin.

    Example:
        >>> margin_loss(torch.tensor([[1.0, 2.0]]), torch.tensor([[4.0]]), margin=3.0)
        tensor(0.5000)
    """
    check_reduction(reduction)
    _check_matrix("distances", distances)
    _check_matrix("other_distances", other_distances, rows=distances.shape[0])
    if not isinstance(margin, (int, float)) or isinstance(margin, bool) or not 0.0 <= margin < float("inf"):
        raise ValueError(f"margin: expected a finite float >= 0, got {margin!r}")
    hinge = F.relu(margin + distances.unsqueeze(2) - other_distances.unsqueeze(1))  # [B, n, m]
    return reduce(hinge.flatten(1).mean(1), reduction)


def dsla_loss(
    h0: torch.Tensor,
    h_perturbed: torch.Tensor,
    scores: torch.Tensor,
    edit_distance: torch.Tensor,
    *,
    lambda1: float = 0.7,
    lambda2: float = 0.5,
    margin: float = 5.0,
    strong_perturbation: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The D-SLA objective ``L_GD + lambda1 * L_edit + lambda2 * L_margin`` for a batch of graphs.

    ``d_i = ||h0 - h_i||`` (:func:`perturbation_distances`), ``d'_j`` the distances
    from ``h0`` to the other originals of the batch (:func:`other_graph_distances`).
    With ``strong_perturbation=True`` the last perturbation is the official
    ``--add_strong_pert`` graph: it counts in the discrimination and edit terms but not
    in the margin term.

    Args:
        h0: ``[B, D]`` embeddings of the original graphs (``B >= 2``).
        h_perturbed: ``[B, n, D]`` embeddings of their perturbations (``n >= 2``).
        scores: ``[B, n + 1]`` scores ``S(G_0), ..., S(G_n)``, original first.
        edit_distance: ``[B, n]`` positive edit distances of the perturbations.
        lambda1: weight of the edit-distance term (default 0.7).
        lambda2: weight of the margin term (default 0.5).
        margin: ``alpha`` of the margin term (default 5.0).
        strong_perturbation: the last perturbation is a strong one (see above).

    Returns:
        ``(loss, parts)``: the scalar loss and a dict of detached, unweighted parts
        ``discrimination``, ``edit_distance``, ``margin`` and ``discrimination_accuracy``
        (the fraction of graphs whose original scores highest).

    Raises:
        ValueError: on mismatched shapes or bad values.

    Example:
        >>> h0, h = torch.randn(4, 8), torch.randn(4, 3, 8)
        >>> scores, edits = torch.randn(4, 4), torch.tensor([[1.0, 2.0, 3.0]]).repeat(4, 1)
        >>> loss, parts = dsla_loss(h0, h, scores, edits)
    """
    distances = perturbation_distances(h0, h_perturbed)
    batch, count = distances.shape
    _check_matrix("scores", scores, rows=batch)
    if scores.shape[1] != count + 1:
        raise ValueError(
            f"scores: expected shape [{batch}, {count + 1}] (the original and {count} perturbations), "
            f"got {tuple(scores.shape)}"
        )
    for name, weight in (("lambda1", lambda1), ("lambda2", lambda2)):
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not 0.0 <= weight < float("inf"):
            raise ValueError(f"{name}: expected a finite float >= 0, got {weight!r}")
    if strong_perturbation and count < 2:
        raise ValueError(f"strong_perturbation: expected at least 2 perturbations (one ordinary), got {count}")
    discrimination = graph_discrimination_loss(scores)
    edit = edit_distance_loss(distances, edit_distance)
    ordinary = distances[:, :-1] if strong_perturbation else distances
    hinge = margin_loss(ordinary, other_graph_distances(h0), margin=margin)
    loss = discrimination + lambda1 * edit + lambda2 * hinge
    accuracy = (scores.argmax(dim=1) == 0).to(scores.dtype).mean()
    parts = {
        "discrimination": discrimination.detach(),
        "edit_distance": edit.detach(),
        "margin": hinge.detach(),
        "discrimination_accuracy": accuracy.detach(),
    }
    return loss, parts


def receptive_field_edit_counts(
    edited: torch.Tensor,
    edge_index: torch.Tensor,
    num_nodes: int,
    num_layers: int = 2,
    *,
    degree_normalized: bool = False,
) -> torch.Tensor:
    """Per node ``s``, the number of edited edges that can change its ``num_layers``-layer output.

    For node-level D-SLA (a node's ego graph as its "graph"). An edited edge ``u -> v``
    (added or removed) changes ``v``'s first aggregation, which reaches ``s`` after
    ``num_layers - 1`` more layers; so it counts for ``s`` when ``v == s`` or ``v``
    reaches ``s`` in at most ``num_layers - 1`` steps along the original ``edge_index``
    (row 0 source, row 1 target). This holds for sum or mean aggregation such as GIN
    (D-SLA's encoder). ``degree_normalized=True`` is for GCN's symmetric normalisation,
    where the edit also changes ``v``'s degree and so the weight of every message ``v``
    sends: one hop more (``num_layers`` steps). Reachability uses the original graph only;
    a path that exists only through other added edges is not counted. An undirected
    edit stored as two directed edges counts once per direction that reaches ``s``.

    Args:
        edited: ``[2, K]`` edited edges (source, target).
        edge_index: ``[2, E]`` edges of the original graph.
        num_nodes: ``N``.
        num_layers: message-passing layers ``L >= 1`` (default 2).
        degree_normalized: messages are scaled by the sender's degree too (GCN).

    Returns:
        ``[N]`` long counts.

    Raises:
        ValueError: on bad shapes, node ids out of range or ``num_layers < 1``.

    Example:
        >>> edge_index = torch.tensor([[0, 1], [1, 2]])  # 0 -> 1 -> 2
        >>> receptive_field_edit_counts(torch.tensor([[2], [0]]), edge_index, 3, num_layers=2)
        tensor([1, 1, 0])
    """
    if not isinstance(num_nodes, int) or isinstance(num_nodes, bool) or num_nodes < 1:
        raise ValueError(f"num_nodes: expected a positive int, got {num_nodes!r}")
    if not isinstance(num_layers, int) or isinstance(num_layers, bool) or num_layers < 1:
        raise ValueError(f"num_layers: expected an int >= 1, got {num_layers!r}")
    for name, edges in (("edited", edited), ("edge_index", edge_index)):
        if not isinstance(edges, torch.Tensor) or edges.dim() != 2 or edges.shape[0] != 2:
            raise ValueError(f"{name}: expected shape [2, K], got {getattr(edges, 'shape', edges)!r}")
        if edges.dtype != torch.long:
            raise ValueError(f"{name}: expected dtype torch.long, got {edges.dtype}")
        if edges.numel() and (int(edges.min()) < 0 or int(edges.max()) >= num_nodes):
            raise ValueError(
                f"{name}: expected node ids in [0, {num_nodes}), got [{int(edges.min())}, {int(edges.max())}]"
            )
    device = edge_index.device
    counts = torch.zeros(num_nodes, dtype=torch.long, device=device)
    if edited.shape[1] == 0:
        return counts
    targets, multiplicity = torch.unique(edited[1].to(device), return_counts=True)
    hops = num_layers - 1 + int(degree_normalized)
    # reach[v, s] = 1 when the edited target v reaches s within `hops` steps: a sparse boolean
    # matrix grown one step at a time (reach <- reach + reach @ step, then back to 0/1), so a
    # node reached along several paths still counts each edit once. Sparse products keep the
    # cost proportional to the reached pairs instead of (targets x edges).
    shape = (num_nodes, num_nodes)

    def binary(indices: torch.Tensor) -> torch.Tensor:
        values = torch.ones(indices.shape[1], dtype=torch.float32, device=device)
        return torch.sparse_coo_tensor(indices, values, shape, check_invariants=False).coalesce()

    step = binary(binary(edge_index).indices())  # duplicate edges count once
    reach = binary(torch.stack([targets, targets]))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        for _ in range(hops):
            reach = binary((reach + torch.sparse.mm(reach, step)).coalesce().indices())
    weight = torch.zeros(num_nodes, dtype=torch.long, device=device)
    weight[targets] = multiplicity
    rows, columns = reach.indices()
    counts.index_add_(0, columns, weight[rows])
    return counts
