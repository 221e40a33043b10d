"""A user's own graph from a folder of plain files, and Zachary's karate club.

:func:`load_graph_folder` reads a folder laid out as::

    my-graph/
        edges.csv | edges.tsv | edges.txt   required: one edge per line, "source,target"
        nodes.txt                            optional: one node name per line (defines N and the order)
        features.npy | features.csv          optional: [N, F] node features
        labels.txt | labels.csv              optional: one class label per node ("" = unlabelled)

Edge files: ``.csv`` is comma-separated (quoted fields allowed), ``.tsv`` tab-separated,
``.txt`` whitespace-separated; two columns; blank lines and lines starting with ``#`` are
skipped. Node ids are either integers ``0 .. N-1`` or names:

- with ``nodes.txt``, ids are its names (or, when no id is a name and every id is an
  integer, row numbers into it);
- without it, integer ids are row numbers (``N`` is the row count of the features or
  labels file, else the largest id + 1); any other ids are names, numbered in sorted
  order -- and then features and labels need a ``nodes.txt`` to say which row is which
  node, so their presence without one is an error rather than a silent guess.

An optional header line is recognised when neither of its two fields is a node id (with
integer ids or ``nodes.txt``); with free names and no ``nodes.txt``, only a header made of
column words (``source,target``, ``src,dst``, ``from,to``, ``u,v``, ...) is recognised.
Self loops and repeated edges are dropped (a :class:`~contrastkit.data.graph_source.GraphSource`
holds neither; the manifest counts them). Every error names the file, and the line
where there is one.

:func:`load_karate_club` is Zachary's karate club (Zachary 1977; the four modularity
communities of Kipf & Welling, ICLR 2017) from PyTorch Geometric's embedded copy.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from contrastkit.data.graph_source import GraphSource

#: Accepted file names, in the order they are looked for (a folder may hold one of each kind).
EDGE_FILES = ("edges.csv", "edges.tsv", "edges.txt")
NODE_FILE = "nodes.txt"
FEATURE_FILES = ("features.npy", "features.csv")
LABEL_FILES = ("labels.txt", "labels.csv")

# Column words that make a first line a header when node ids are free names.
_HEADER_WORDS = frozenset({
    "source", "target", "src", "dst", "from", "to", "u", "v", "head", "tail", "node", "node1", "node2",
    "source_id", "target_id", "src_id", "dst_id", "from_id", "to_id", "id1", "id2", "start", "end",
})


def _pick(folder: Path, names: tuple[str, ...]) -> Path | None:
    found = [folder / name for name in names if (folder / name).is_file()]
    if len(found) > 1:
        raise ValueError(f"graph folder {folder}: expected at most one of {', '.join(names)}, got "
                         f"{', '.join(path.name for path in found)}")
    return found[0] if found else None


def _read_text(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: expected UTF-8 text, got undecodable bytes at offset {error.start}") from None


def _split_line(line: str, delimiter: str | None) -> list[str]:
    if delimiter is None:
        return line.split()
    if '"' in line:  # quoted fields: let csv handle them; plain lines take the fast path
        return [field.strip() for field in next(csv.reader([line], delimiter=delimiter))]
    return [field.strip() for field in line.split(delimiter)]


def _read_edge_rows(path: Path) -> list[tuple[int, str, str]]:
    """``(line number, source, target)`` of every edge line; comments and blank lines skipped."""
    delimiter = {".csv": ",", ".tsv": "\t"}.get(path.suffix)
    rows = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = _split_line(line, delimiter)
        if len(fields) != 2 or not fields[0] or not fields[1]:
            raise ValueError(f"{path} line {number}: expected 2 non-empty columns (source, target), got "
                             f"{len(fields)} field(s): {line!r}")
        rows.append((number, fields[0], fields[1]))
    if not rows:
        raise ValueError(f"{path}: expected at least one edge, got an empty file (or only comments)")
    return rows


def _is_int(token: str) -> bool:
    return token.lstrip("+-").isdigit()


def _read_nodes(path: Path) -> list[str]:
    names: list[str] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        name = line.strip()
        if not name:
            raise ValueError(f"{path} line {number}: expected a node name, got an empty line")
        if name in first_line:
            raise ValueError(f"{path} line {number}: node {name!r} repeats line {first_line[name]}")
        first_line[name] = number
        names.append(name)
    if not names:
        raise ValueError(f"{path}: expected one node name per line, got an empty file")
    return names


def _read_features(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as error:
            raise ValueError(f"{path}: cannot read as a numeric .npy array: {error}") from None
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise ValueError(f"{path}: expected numeric features, got dtype {array.dtype}")
        if array.ndim != 2:
            raise ValueError(f"{path}: expected shape [N, F], got {array.shape}")
        array = array.astype(np.float32)
        bad = ~np.isfinite(array).all(axis=1)
        if bad.any():
            raise ValueError(f"{path}: expected finite features, got NaN/inf in row {int(bad.nonzero()[0][0])}")
        return array
    rows: list[list[float]] = []
    lines = [(number, line) for number, line in enumerate(_read_text(path).splitlines(), start=1)
             if line.strip() and not line.strip().startswith("#")]
    for position, (number, line) in enumerate(lines):
        fields = _split_line(line, ",")
        try:
            values = [float(field) for field in fields]
        except ValueError:
            if position == 0 and not any(_is_float(field) for field in fields):
                continue  # a header line: no field is a number
            bad = next(field for field in fields if not _is_float(field))
            raise ValueError(f"{path} line {number}: expected numeric features, got {bad!r}") from None
        if rows and len(values) != len(rows[0]):
            raise ValueError(f"{path} line {number}: expected {len(rows[0])} values (as the first row), "
                             f"got {len(values)}")
        if not all(np.isfinite(values)):
            raise ValueError(f"{path} line {number}: expected finite features, got NaN/inf")
        rows.append(values)
    if not rows:
        raise ValueError(f"{path}: expected [N, F] numeric rows, got an empty file")
    return np.asarray(rows, dtype=np.float32)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_labels(path: Path) -> list[str]:
    labels = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        fields = _split_line(line, ",") if path.suffix == ".csv" else [line.strip()]
        if len(fields) > 1:
            raise ValueError(f"{path} line {number}: expected one label per line, got {len(fields)} fields: {line!r}")
        labels.append(fields[0] if fields else "")
    return labels


def _encode_labels(labels: list[str]) -> tuple[torch.Tensor, list[str]]:
    present = sorted(set(labels) - {""})
    if present and all(_is_int(label) for label in present):
        present.sort(key=int)  # "2" before "10"; class ids then follow integer labels 0..C-1
    class_of = {name: code for code, name in enumerate(present)}
    return torch.tensor([class_of.get(label, -1) for label in labels], dtype=torch.long), present


def load_graph_folder(path: str | Path, *, undirected: bool = False) -> GraphSource:
    """A graph from a folder: an edge list, and optional node names, features and labels.

    See the module docstring for the layout and how node ids, ``N`` and a header line are
    worked out.

    Args:
        path: the folder.
        undirected: store every edge in both directions (after dropping self loops and
            duplicates); by default edges keep the direction of the file (row 0 -> row 1).

    Returns:
        A validated :class:`GraphSource`: ``edge_index`` sorted by (source, target), ``x``
        float32 or ``None``, ``y`` (``-1``: unlabelled) and sorted ``class_names`` (in
        integer order when every label is an integer) or ``None``, ``node_names`` when
        nodes have names, and a manifest of the files read and the edges dropped.

    Raises:
        FileNotFoundError: when the folder or its edge file is missing.
        ValueError: naming the file and line, for an empty edge file, a line without two
            columns, a dangling edge (an id that is not a node), features or labels whose row
            count is not ``N``, non-numeric or non-finite features, two files of one kind
            (e.g. ``edges.csv`` and ``edges.txt``), or named nodes with features/labels but
            no ``nodes.txt``.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"graph folder not found: {folder}")
    edge_file = _pick(folder, EDGE_FILES)
    if edge_file is None:
        raise FileNotFoundError(f"graph folder {folder}: expected an edge list ({' or '.join(EDGE_FILES)}), got none")
    node_file = folder / NODE_FILE if (folder / NODE_FILE).is_file() else None
    feature_file, label_file = _pick(folder, FEATURE_FILES), _pick(folder, LABEL_FILES)

    rows = _read_edge_rows(edge_file)
    names = _read_nodes(node_file) if node_file is not None else None
    index = {name: node for node, name in enumerate(names)} if names is not None else {}
    body = rows[1:] if len(rows) > 1 else rows  # the first row may be a header: decide on the rest
    tokens = [token for _, source, target in body for token in (source, target)]
    if names is not None:
        integer_ids = not any(token in index for token in tokens) and all(_is_int(token) for token in tokens)
    else:
        integer_ids = all(_is_int(token) for token in tokens)
    number, first, second = rows[0]
    if integer_ids:
        header = not _is_int(first) and not _is_int(second)
    elif names is not None:
        header = first not in index and second not in index
    else:
        header = first.lower() in _HEADER_WORDS and second.lower() in _HEADER_WORDS
    if header:
        rows = rows[1:]
        if not rows:
            raise ValueError(f"{edge_file}: expected at least one edge after the header line {number}, got none")

    features = _read_features(feature_file) if feature_file is not None else None
    labels = _read_labels(label_file) if label_file is not None else None
    # Where N comes from, for messages.
    if names is not None:
        num_nodes, defined_by = len(names), f"{node_file.name} ({len(names)} names)"
    elif integer_ids and (features is not None or labels is not None):
        counts = [(file.name, count) for file, count in ((feature_file, None if features is None else len(features)),
                                                         (label_file, None if labels is None else len(labels)))
                  if count is not None]
        if len({count for _, count in counts}) > 1:
            raise ValueError(f"graph folder {folder}: expected one row per node in every file, got "
                             + ", ".join(f"{name}: {count} rows" for name, count in counts))
        num_nodes, defined_by = counts[0][1], f"{counts[0][0]} ({counts[0][1]} rows)"
    else:
        num_nodes, defined_by = -1, ""  # worked out from the edges below

    node_names = names
    if integer_ids:
        ids = []
        for number, source, target in rows:
            for token in (source, target):
                if not _is_int(token):
                    raise ValueError(f"{edge_file} line {number}: expected an integer node id (as on the other "
                                     f"lines), got {token!r}")
            pair = (int(source), int(target))
            for token, node in zip((source, target), pair):
                if node < 0 or (num_nodes >= 0 and node >= num_nodes):
                    expected = f"0..{num_nodes - 1} ({defined_by})" if num_nodes >= 0 else "a node id >= 0"
                    raise ValueError(f"{edge_file} line {number}: dangling edge: node id {token} is not a node; "
                                     f"expected {expected}")
            ids.append(pair)
        if num_nodes < 0:
            num_nodes = max(max(pair) for pair in ids) + 1
    elif names is not None:
        ids = []
        for number, source, target in rows:
            for token in (source, target):
                if token not in index:
                    raise ValueError(f"{edge_file} line {number}: dangling edge: node {token!r} is not in "
                                     f"{node_file.name}")
            ids.append((index[source], index[target]))
    else:
        for file in (feature_file, label_file):
            if file is not None:
                raise ValueError(
                    f"{edge_file} names its nodes ({rows[0][1]!r}, ...) but {folder} has no {NODE_FILE}: the rows of "
                    f"{file.name} cannot be matched to nodes; add {NODE_FILE} (one node name per line, in row order)"
                )
        node_names = sorted({token for _, source, target in rows for token in (source, target)})
        index = {name: node for node, name in enumerate(node_names)}
        num_nodes = len(node_names)
        ids = [(index[source], index[target]) for _, source, target in rows]

    for file, table in ((feature_file, features), (label_file, labels)):
        if table is not None and len(table) != num_nodes:
            raise ValueError(f"{file}: expected {num_nodes} rows (one per node, N from {defined_by or edge_file.name}), "
                             f"got {len(table)}")

    edges = torch.tensor(ids, dtype=torch.long).reshape(-1, 2).t()
    loops = edges[0] == edges[1]
    edges = edges[:, ~loops]
    # One key per directed edge: unique() drops repeats and sorts by (source, target).
    keys = torch.unique(edges[0] * num_nodes + edges[1])
    distinct = int(keys.numel())
    if undirected:
        heads, tails = keys // num_nodes, keys % num_nodes
        keys = torch.unique(torch.cat([keys, tails * num_nodes + heads]))
    edge_index = torch.stack([keys // num_nodes, keys % num_nodes])

    y, class_names = _encode_labels(labels) if labels is not None else (None, None)
    manifest = {
        "folder": str(folder),
        "files": {"edges": edge_file.name, "nodes": node_file.name if node_file else None,
                  "features": feature_file.name if feature_file else None,
                  "labels": label_file.name if label_file else None},
        "node_ids": "integers" if integer_ids else "names",
        "header_line": header,
        "edges_read": len(rows),
        "self_loops_dropped": int(loops.sum()),
        "duplicate_edges_dropped": int(edges.shape[1]) - distinct,
        "undirected": undirected,
    }
    source = GraphSource(
        num_nodes=num_nodes,
        edge_index=edge_index,
        x=None if features is None else torch.from_numpy(features),
        y=y,
        class_names=class_names,
        node_names=node_names,
        name=f"graph:{folder.name}",
        description=f"graph from {folder} ({edge_file.name})",
        manifest=manifest,
    )
    return source.validate()


def load_karate_club() -> GraphSource:
    """Zachary's karate club: 34 members, 78 friendships (156 directed edges), 4 communities.

    From ``torch_geometric.datasets.KarateClub`` (the data are embedded in the class; nothing
    is downloaded or written). Labels are the four modularity-based communities used by Kipf &
    Welling (ICLR 2017); features are the identity (one-hot node ids), as in PyG.

    Returns:
        A validated :class:`GraphSource` with both directions of every edge,
        ``x = I_34``, ``y`` in 0..3 and ``class_names`` ``community-0`` .. ``community-3``.

    Raises:
        ImportError: when torch-geometric is not installed (``pip install 'contrastkit[graph]'``).
    """
    try:
        import torch_geometric
        from torch_geometric.datasets import KarateClub
    except ImportError as error:  # pragma: no cover - the graph extra is installed by make
        raise ImportError("karate club needs torch-geometric: pip install 'contrastkit[graph]'") from error
    data = KarateClub()[0]
    num_nodes = int(data.num_nodes)
    keys = torch.unique(data.edge_index[0] * num_nodes + data.edge_index[1])
    num_classes = int(data.y.max()) + 1
    return GraphSource(
        num_nodes=num_nodes,
        edge_index=torch.stack([keys // num_nodes, keys % num_nodes]),
        x=data.x.float(),
        y=data.y.long(),
        class_names=[f"community-{label}" for label in range(num_classes)],
        node_names=[str(node) for node in range(num_nodes)],
        name="karate-club",
        description="Zachary's karate club: 34 members, 78 undirected friendships, 4 communities",
        manifest={"source": "torch_geometric.datasets.KarateClub", "torch_geometric": torch_geometric.__version__,
                  "edges": "both directions of each undirected edge"},
    ).validate()
