"""The one record every graph loader returns: :class:`GraphSource`.

A graph data source (the Debian package index, a user's edge-list folder, Zachary's
karate club) is read into plain tensors and names, before any split, sampling or model
is involved. :mod:`contrastkit.data.graph` turns a source into training and evaluation
splits; keeping the two apart means a new source only has to fill in this record, and
:meth:`GraphSource.validate` catches a malformed one (a dangling edge, a label vector of
the wrong length) where it is made, not deep inside message passing.

Conventions (see ``DESIGN.md``): ``edge_index`` row 0 is the source and row 1 the
target, exactly as the data states the relation (a package -> its dependency); a source
stores each directed edge once and holds no self loops, and it is up to the consumer to
make the graph undirected (``torch_geometric.utils.to_undirected``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


def _check_long(name: str, tensor: object, rows: int | None) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dtype != torch.long:
        raise ValueError(f"{name}: expected dtype torch.long, got {tensor.dtype}")
    if rows is not None and (tensor.dim() != 2 or tensor.shape[0] != rows):
        raise ValueError(f"{name}: expected shape [{rows}, E], got {tuple(tensor.shape)}")
    return tensor


def _check_names(name: str, names: object, count: int | None) -> list[str]:
    if not isinstance(names, list) or not all(isinstance(entry, str) for entry in names):
        raise ValueError(f"{name}: expected a list of str, got {type(names).__name__}")
    if count is not None and len(names) != count:
        raise ValueError(f"{name}: expected {count} names, got {len(names)}")
    return names


@dataclass
class GraphSource:
    """A graph as read from its source: nodes, directed edges, optional features, labels and items.

    Attributes:
        num_nodes: the number of nodes ``N``; node ids are ``0 .. N-1``.
        edge_index: ``[2, E]`` long, row 0 the source and row 1 the target of each directed
            edge as the data states it; no self loops, no duplicate edges.
        x: ``[N, F]`` float32 node features, or ``None``.
        y: ``[N]`` long class ids, ``-1`` for an unlabelled node, or ``None``.
        class_names: the name of each class id (``len == num_classes``), or ``None``.
        node_names: the name of each node (``len == N``), or ``None``.
        item_pairs: ``[2, T]`` long ``(node, item)`` pairs (e.g. package -> debtag), or ``None``.
        item_names: the name of each item id, or ``None``.
        edge_type: ``[E]`` long relation type of each edge (non-negative), or ``None``.
        name: a short name, e.g. ``"debian-packages"``.
        description: a one-line description.
        manifest: provenance (files read, checksums, counts, options); free-form.
    """

    num_nodes: int
    edge_index: torch.Tensor
    x: torch.Tensor | None = None
    y: torch.Tensor | None = None
    class_names: list[str] | None = None
    node_names: list[str] | None = None
    item_pairs: torch.Tensor | None = None
    item_names: list[str] | None = None
    edge_type: torch.Tensor | None = None
    name: str = ""
    description: str = ""
    manifest: dict = field(default_factory=dict)

    @property
    def num_edges(self) -> int:
        """The number of directed edges ``E``."""
        return int(self.edge_index.shape[1])

    @property
    def num_classes(self) -> int:
        """The number of classes: ``len(class_names)``, else ``max(y) + 1``, else 0."""
        if self.class_names is not None:
            return len(self.class_names)
        if self.y is None or self.y.numel() == 0:
            return 0
        return int(self.y.max().clamp_min(-1)) + 1

    def validate(self) -> GraphSource:
        """Check shapes, dtypes and id ranges; return ``self`` so that loaders can chain it.

        Raises:
            ValueError: naming the field and what was expected, for a negative node count, an
                edge endpoint outside ``0 .. N-1``, a self loop or duplicate edge, ``x``/``y``/
                ``node_names`` whose length is not ``N``, a class id outside ``-1 .. C-1``, an
                item pair out of range, an ``edge_type`` of the wrong length or a wrong dtype.
        """
        prefix = f"graph {self.name!r}: " if self.name else "graph: "
        try:
            self._validate()
        except ValueError as error:
            raise ValueError(prefix + str(error)) from None
        return self

    def _validate(self) -> None:
        if isinstance(self.num_nodes, bool) or not isinstance(self.num_nodes, int) or self.num_nodes < 0:
            raise ValueError(f"num_nodes: expected a non-negative int, got {self.num_nodes!r}")
        nodes = self.num_nodes
        edges = _check_long("edge_index", self.edge_index, 2)
        if edges.numel():
            low, high = int(edges.min()), int(edges.max())
            if low < 0 or high >= nodes:
                bad = int(((edges < 0) | (edges >= nodes)).any(dim=0).nonzero()[0, 0])
                raise ValueError(
                    f"edge_index: expected node ids in 0..{nodes - 1}, got edge {bad} = "
                    f"({int(edges[0, bad])}, {int(edges[1, bad])}) (dangling endpoint)"
                )
            loops = (edges[0] == edges[1]).nonzero()
            if loops.numel():
                bad = int(loops[0, 0])
                raise ValueError(f"edge_index: expected no self loops, got edge {bad} = ({int(edges[0, bad])}, "
                                 f"{int(edges[1, bad])}) and {loops.numel() - 1} more")
            # One key per directed edge; equal keys are duplicates.
            keys = edges[0] * nodes + edges[1]
            distinct = int(torch.unique(keys).numel())
            if distinct != edges.shape[1]:
                raise ValueError(f"edge_index: expected no duplicate edges, got {edges.shape[1] - distinct} duplicates")
        if self.x is not None:
            if not isinstance(self.x, torch.Tensor) or not self.x.is_floating_point() or self.x.dim() != 2:
                got = tuple(self.x.shape) if isinstance(self.x, torch.Tensor) else type(self.x).__name__
                dtype = f" {self.x.dtype}" if isinstance(self.x, torch.Tensor) else ""
                raise ValueError(f"x: expected a float tensor of shape [N, F], got {got}{dtype}")
            if self.x.shape[0] != nodes:
                raise ValueError(f"x: expected {nodes} rows (one per node), got {self.x.shape[0]}")
        if self.class_names is not None:
            _check_names("class_names", self.class_names, None)
        if self.y is not None:
            y = _check_long("y", self.y, None)
            if y.dim() != 1 or y.shape[0] != nodes:
                raise ValueError(f"y: expected shape [{nodes}] (one label per node), got {tuple(y.shape)}")
            if y.numel():
                top = len(self.class_names) - 1 if self.class_names is not None else None
                if int(y.min()) < -1 or (top is not None and int(y.max()) > top):
                    expected = "-1.." + (str(top) if top is not None else "C-1")
                    raise ValueError(f"y: expected class ids in {expected}, got range "
                                     f"{int(y.min())}..{int(y.max())}")
        if self.node_names is not None:
            _check_names("node_names", self.node_names, nodes)
        if self.item_names is not None:
            _check_names("item_names", self.item_names, None)
        if self.item_pairs is not None:
            pairs = _check_long("item_pairs", self.item_pairs, 2)
            if pairs.numel():
                if int(pairs[0].min()) < 0 or int(pairs[0].max()) >= nodes:
                    raise ValueError(f"item_pairs: expected node ids in 0..{nodes - 1} in row 0, got range "
                                     f"{int(pairs[0].min())}..{int(pairs[0].max())}")
                top = len(self.item_names) if self.item_names is not None else None
                if int(pairs[1].min()) < 0 or (top is not None and int(pairs[1].max()) >= top):
                    expected = f"0..{top - 1}" if top is not None else "non-negative ids"
                    raise ValueError(f"item_pairs: expected item ids {expected} in row 1, got range "
                                     f"{int(pairs[1].min())}..{int(pairs[1].max())}")
        if self.edge_type is not None:
            types = _check_long("edge_type", self.edge_type, None)
            if types.dim() != 1 or types.shape[0] != edges.shape[1]:
                raise ValueError(f"edge_type: expected shape [{edges.shape[1]}] (one per edge), got {tuple(types.shape)}")
            if types.numel() and int(types.min()) < 0:
                raise ValueError(f"edge_type: expected non-negative relation types, got {int(types.min())}")
