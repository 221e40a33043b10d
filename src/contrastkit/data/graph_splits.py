"""Seeded hold-out splits of one graph: labelled nodes for the probe, edges for link prediction.

:func:`node_split` holds out training / validation / test nodes for node classification,
:func:`split_edges` holds out edges (and as many sampled non-edges) for link prediction;
:func:`contrastkit.data.graph.node_graph_splits` prepares a node-level dataset with both, and
:mod:`contrastkit.eval.graph` scores embeddings on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from contrastkit.utils.checks import check_edge_index
from contrastkit.utils.graph_index import pair_keys, sample_non_edges

__all__ = ["EdgeSplit", "check_node_labels", "node_split", "split_edges"]


def check_node_labels(labels: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """``labels`` as ``long`` when it is ``[N]`` integer node labels (``-1`` = unlabelled) with one labelled node."""
    if not isinstance(labels, torch.Tensor) or labels.shape != (num_nodes,):
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels: expected integer labels of shape [{num_nodes}] (-1 = unlabelled), got {shape}")
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"labels: expected integer labels, got dtype {labels.dtype}")
    if not bool((labels >= 0).any()):
        raise ValueError("labels: expected at least one labelled node (label >= 0), got none")
    return labels.long()


def node_split(
    num_nodes: int,
    labels: torch.Tensor,
    *,
    train_fraction: float = 0.1,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A seeded random train / validation / test split of the labelled nodes.

    Nodes with a negative label are unlabelled and go to no split. Of the ``L`` labelled nodes,
    ``round(train_fraction * L)`` go to training, ``round(val_fraction * L)`` to validation and
    the rest to test, by one seeded random permutation (not stratified, as in GRACE and GCA).

    Args:
        num_nodes: the number of nodes ``N``.
        labels: ``[N]`` integer labels; ``-1`` (any negative value) marks an unlabelled node.
        train_fraction: the share of labelled nodes used for training.
        val_fraction: the share used for choosing the L2 strength.
        seed: the permutation's seed.

    Returns:
        ``(train_idx, val_idx, test_idx)``: sorted long tensors of node ids, on ``labels``' device.

    Raises:
        ValueError: on labels of the wrong shape or dtype, fractions outside ``[0, 1]`` or adding up
            to 1 or more, or a split that would leave training or test empty.
    """
    labels = check_node_labels(labels, int(num_nodes))
    if not (0.0 < train_fraction < 1.0 and 0.0 <= val_fraction < 1.0 and train_fraction + val_fraction < 1.0):
        raise ValueError(
            "node_split: expected 0 < train_fraction, 0 <= val_fraction and train_fraction + val_fraction < 1, "
            f"got {train_fraction} and {val_fraction}"
        )
    labelled = torch.nonzero(labels.cpu() >= 0).flatten()
    total = labelled.numel()
    num_train, num_val = round(train_fraction * total), round(val_fraction * total)
    if num_train < 1 or total - num_train - num_val < 1:
        raise ValueError(
            f"node_split: {total} labelled nodes give {num_train} training and "
            f"{total - num_train - num_val} test nodes; expected at least one of each"
        )
    generator = torch.Generator().manual_seed(int(seed))
    shuffled = labelled[torch.randperm(total, generator=generator)]
    parts = (shuffled[:num_train], shuffled[num_train : num_train + num_val], shuffled[num_train + num_val :])
    return tuple(part.sort().values.to(labels.device) for part in parts)  # type: ignore[return-value]


@dataclass(frozen=True)
class EdgeSplit:
    """Edges held out for link prediction.

    Attributes:
        train_edge_index: ``[2, E_train]`` the input edges minus the held-out pairs (self loops and
            duplicates of kept pairs stay as they were).
        val_pos: ``[2, P_val]`` held-out validation edges (``u < v`` for undirected splits).
        val_neg: ``[2, P_val]`` validation non-edges.
        test_pos: ``[2, P_test]`` held-out test edges.
        test_neg: ``[2, P_test]`` test non-edges.
    """

    train_edge_index: torch.Tensor
    val_pos: torch.Tensor
    val_neg: torch.Tensor
    test_pos: torch.Tensor
    test_neg: torch.Tensor


def split_edges(
    edge_index: torch.Tensor,
    num_nodes: int,
    *,
    val_fraction: float = 0.05,
    test_fraction: float = 0.1,
    seed: int = 0,
    undirected: bool = True,
) -> EdgeSplit:
    """Hold out a seeded fraction of the edges (and as many non-edges) for link prediction.

    With ``undirected=True`` an edge is the unordered pair ``{u, v}``: ``(u, v)`` and ``(v, u)``
    count once, are held out together and leave the training graph together, and a negative is
    a pair with no edge in either direction. With ``undirected=False`` every ordered pair is its
    own edge. Self loops are never held out (they stay in the training graph) and never negatives.
    Of the ``P`` distinct pairs, ``round(test_fraction * P)`` become test positives and
    ``round(val_fraction * P)`` validation positives. Negatives are distinct pairs drawn
    uniformly among all non-edges of the full graph (held-out edges included in "edges"), and
    disjoint between validation and test.

    Args:
        edge_index: ``[2, E]`` long edges (undirected graphs store both directions).
        num_nodes: the number of nodes ``N``.
        val_fraction: the share of pairs held out for validation.
        test_fraction: the share of pairs held out for testing.
        seed: the seed of the hold-out and of the negatives.
        undirected: treat ``(u, v)`` and ``(v, u)`` as one pair.

    Returns:
        An :class:`EdgeSplit`, its tensors on ``edge_index``'s device.

    Raises:
        ValueError: on a malformed ``edge_index``, fractions that leave no training pair, or a
            graph too dense to supply enough negatives.
    """
    edge_index = check_edge_index("split_edges", edge_index, int(num_nodes), dtype=None, min_nodes=1)
    device, num_nodes = edge_index.device, int(num_nodes)
    if not (0.0 <= val_fraction < 1.0 and 0.0 <= test_fraction < 1.0 and val_fraction + test_fraction < 1.0):
        raise ValueError(
            "split_edges: expected val_fraction, test_fraction >= 0 with a sum below 1, "
            f"got {val_fraction} and {test_fraction}"
        )
    edges = edge_index.cpu()
    keys = pair_keys(edges[0], edges[1], num_nodes, undirected)
    pairs = torch.unique(keys[edges[0] != edges[1]])  # sorted, self loops excluded
    total = pairs.numel()
    num_test, num_val = round(test_fraction * total), round(val_fraction * total)
    if total - num_test - num_val < 1:
        raise ValueError(
            f"split_edges: {total} distinct pairs leave no training pair after holding out {num_val + num_test}"
        )
    generator = torch.Generator().manual_seed(int(seed))
    shuffled = pairs[torch.randperm(total, generator=generator)]
    test_keys, val_keys = shuffled[:num_test], shuffled[num_test : num_test + num_val]
    held_out = torch.cat([test_keys, val_keys])
    keep = ~torch.isin(keys, held_out)
    negatives = sample_non_edges(pairs, num_val + num_test, num_nodes, undirected=undirected, generator=generator,
                                 owner="split_edges")

    def unpack(key_values: torch.Tensor) -> torch.Tensor:
        return torch.stack([key_values // num_nodes, key_values % num_nodes]).to(device)

    return EdgeSplit(
        train_edge_index=edge_index[:, keep.to(device)],
        val_pos=unpack(val_keys),
        val_neg=unpack(negatives[:num_val]),
        test_pos=unpack(test_keys),
        test_neg=unpack(negatives[num_val:]),
    )
