"""``debian-packages``: the Debian binary-package dependency graph, from the index apt keeps.

Every Debian or Ubuntu machine that has run ``apt-get update`` holds the full package
index of its release in ``/var/lib/apt/lists`` (``*_Packages`` files, often lz4- or
xz-compressed). That index is a real, large, labelled graph that needs no download:
bookworm's ``main`` has 63,440 amd64 binary packages, each with a Section (58 of them),
a one-line description and, for about 30k packages, debtags (598 distinct ones).

The snapshot (a compressed npz of string tables and index arrays plus a JSON manifest with
its checksum) is built by :mod:`contrastkit.data.debian_packages_build`, whose docstring
states the merging, node, edge, label and item rules. This module reads it:

- **Labels** are the Section without its component prefix (``contrib/net`` -> ``net``).
  Sections with fewer than ``min_section_size`` packages merge into ``other`` here (the
  snapshot keeps every section).
- **Features** are computed here from the short description only (never the package name,
  whose prefix -- ``python3-``, ``lib``, ``golang-`` -- gives the section away): TF-IDF ->
  truncated SVD -> row L2 normalisation (:func:`description_features`; about 5 s for 63k
  packages on one core).

The snapshot shipped in ``contrastkit/data/assets`` (``debian-packages.npz``, 1.8 MB, and
its ``debian-packages.manifest.json``) was built from Debian 12 (bookworm) amd64 ``main``
with ``bookworm-updates`` and ``bookworm-security``: 63,678 packages, 292,743 edges
(263,746 Depends, 997 Pre-Depends, 28,000 Recommends), 58 sections, 30,300 tagged
packages with 598 debtags (112,118 pairs). Rebuild it from the machine's own index with
``contrastkit data build-debian-packages --out DIR``
(:func:`contrastkit.data.debian_packages_build.rebuild_from_apt`).

Example:
    >>> source = load_debian_packages()
    >>> source.num_nodes, tuple(source.edge_index.shape), tuple(source.x.shape), len(source.class_names)
    (63678, (2, 292743), (63678, 128), 52)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from contrastkit.data.graph_source import GraphSource

#: The snapshot's file names inside its folder.
SNAPSHOT_NAME = "debian-packages.npz"
MANIFEST_NAME = "debian-packages.manifest.json"

#: The folder of the snapshot that ships with the package.
DEFAULT_SNAPSHOT_DIR = Path(__file__).parent / "assets"

#: The format of the snapshot the builder writes and this module reads; bumped when the arrays change.
SNAPSHOT_FORMAT = "contrastkit/debian-packages/1"

#: ``edge_type`` ids: the index is the id.
EDGE_TYPES = ("depends", "pre-depends", "recommends")

#: The class that small sections merge into at load time.
OTHER_SECTION = "other"

#: How to rebuild a snapshot, for error messages.
REBUILD_HINT = "rebuild it with `contrastkit data build-debian-packages --out DIR`"
#: The arrays of the npz (the builder writes exactly these).
_ARRAY_NAMES = ("names", "descriptions", "section_names", "section_codes", "tag_names", "edges", "edge_type", "tag_pairs")


# ----------------------------------------------------------------------------------------- features


def description_features(texts: Sequence[str], dim: int = 128, seed: int = 0) -> np.ndarray:
    """Dense node features from text: TF-IDF -> truncated SVD -> row L2 normalisation (LSA).

    ``TfidfVectorizer(sublinear_tf=True, min_df=2)`` then ``TruncatedSVD(dim,
    random_state=seed)`` (randomized, deterministic for a seed). When the input is too
    small for ``dim`` components (``dim >= min(rows, terms)``), an exact SVD gives the
    available ones and the rest are zero. A text with no term seen twice is a zero row.

    Args:
        texts: one text per node.
        dim: the feature size.
        seed: the SVD's random state.

    Returns:
        ``[len(texts), dim]`` float32, rows of unit L2 norm (or zero).

    Raises:
        ValueError: when ``dim`` is not a positive int.
    """
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize
    from sklearn.utils.extmath import svd_flip

    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"description_features: expected a positive int dim, got {dim!r}")
    texts = list(texts)
    features = np.zeros((len(texts), int(dim)), dtype=np.float64)
    if len(texts) < 2:  # min_df=2 needs two texts
        return features.astype(np.float32)
    try:
        tfidf = TfidfVectorizer(sublinear_tf=True, min_df=2).fit_transform(texts)
    except ValueError:  # empty vocabulary: no word occurs in two texts
        return features.astype(np.float32)
    if dim < min(tfidf.shape):
        features = TruncatedSVD(int(dim), random_state=seed).fit_transform(tfidf)
    else:
        left, values, right = np.linalg.svd(tfidf.toarray(), full_matrices=False)
        left, right = svd_flip(left, right)
        features[:, : values.size] = left * values
    return normalize(features).astype(np.float32)


# ----------------------------------------------------------------------------------------- reading the snapshot


def _decode_strings(array: np.ndarray, count: int | None = None) -> list[str]:
    text = array.tobytes().decode("utf-8")
    strings = text.split("\n") if (text or count) else []
    if count is not None and len(strings) != count:
        raise ValueError(f"expected {count} strings, got {len(strings)}")
    return strings


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_snapshot(snapshot_dir: Path) -> tuple[dict, dict[str, np.ndarray]]:
    manifest_path, npz_path = snapshot_dir / MANIFEST_NAME, snapshot_dir / SNAPSHOT_NAME
    for path in (manifest_path, npz_path):
        if not path.is_file():
            raise FileNotFoundError(f"debian-packages: snapshot file not found: {path}; {REBUILD_HINT} "
                                    f"(and load it with snapshot_dir=DIR)")
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"debian-packages: cannot read {manifest_path}: {error}; {REBUILD_HINT}") from error
    if not isinstance(manifest, dict) or manifest.get("format") != SNAPSHOT_FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ValueError(f"debian-packages: {manifest_path}: expected format {SNAPSHOT_FORMAT!r}, got {got!r}; "
                         f"{REBUILD_HINT}")
    expected, actual = manifest.get("snapshot_sha256"), _sha256(npz_path)
    if actual != expected:
        raise ValueError(
            f"debian-packages: checksum mismatch for {npz_path}: the manifest expects sha256 {expected}, "
            f"the file has {actual} (corrupt or replaced); {REBUILD_HINT}"
        )
    with np.load(npz_path, allow_pickle=False) as archive:
        missing = [name for name in _ARRAY_NAMES if name not in archive.files]
        if missing:
            raise ValueError(f"debian-packages: {npz_path} lacks arrays {missing}; {REBUILD_HINT}")
        arrays = {name: archive[name] for name in _ARRAY_NAMES}
    return manifest, arrays


def load_debian_packages(
    snapshot_dir: str | Path | None = None,
    *,
    feature_dim: int | None = 128,
    min_section_size: int = 100,
    seed: int = 0,
    compute_features: bool = True,
) -> GraphSource:
    """The Debian package graph from a snapshot: dependency edges, Section labels, description features, debtags.

    Args:
        snapshot_dir: the folder with ``debian-packages.npz`` and its manifest; default: the
            snapshot shipped with contrastkit (``contrastkit/data/assets``).
        feature_dim: the size of the description features (:func:`description_features`);
            ``None`` skips them (``x = None``).
        min_section_size: sections with fewer packages merge into the class ``other``
            (``0`` or ``1``: no merging).
        seed: the feature SVD's random state.
        compute_features: ``False`` skips the features (as ``feature_dim=None``), e.g. when
            only the package x tag pairs are needed.

    Returns:
        A validated :class:`GraphSource`: ``edge_index`` package -> dependency, ``edge_type``
        (:data:`EDGE_TYPES`), ``y`` (``-1`` for a package without Section), sorted
        ``class_names``, ``node_names``, debtag ``item_pairs``/``item_names``, and the
        manifest (plus ``load_options``).

    Raises:
        FileNotFoundError: when the npz or manifest is missing (the message says how to rebuild).
        ValueError: when the npz does not match the manifest's checksum or counts, or an
            option is out of range.
    """
    if isinstance(min_section_size, bool) or not isinstance(min_section_size, int) or min_section_size < 0:
        raise ValueError(f"debian-packages: expected a non-negative int min_section_size, got {min_section_size!r}")
    folder = DEFAULT_SNAPSHOT_DIR if snapshot_dir is None else Path(snapshot_dir).expanduser()
    manifest, arrays = _read_snapshot(folder)
    counts = manifest.get("counts", {})
    codes = arrays["section_codes"].astype(np.int64)
    num_nodes = int(codes.shape[0])
    try:
        names = _decode_strings(arrays["names"], num_nodes)
        descriptions = _decode_strings(arrays["descriptions"], num_nodes)
        section_names = _decode_strings(arrays["section_names"])
        tag_names = _decode_strings(arrays["tag_names"])
    except (UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"debian-packages: bad string table in {folder / SNAPSHOT_NAME}: {error}; {REBUILD_HINT}") from None
    edges, pairs = arrays["edges"], arrays["tag_pairs"]
    found = {"nodes": num_nodes, "edges": int(edges.shape[1]), "tags": len(tag_names), "tag_pairs": int(pairs.shape[1])}
    wrong = {key: (counts.get(key), value) for key, value in found.items() if counts.get(key) != value}
    if wrong:
        raise ValueError(f"debian-packages: the snapshot in {folder} disagrees with its manifest (manifest, npz): "
                         f"{wrong}; {REBUILD_HINT}")

    # Small sections merge into "other" here, not in the snapshot, so the threshold stays an option.
    sizes = np.bincount(codes[codes >= 0], minlength=len(section_names))
    small = sizes < min_section_size
    class_names = sorted({name for name, is_small in zip(section_names, small) if not is_small}
                         | ({OTHER_SECTION} if small.any() else set()))
    class_of = np.array([class_names.index(OTHER_SECTION if is_small else name)
                         for name, is_small in zip(section_names, small)] + [-1], dtype=np.int64)
    y = class_of[codes]  # code -1 picks the trailing -1

    features = None
    if compute_features and feature_dim is not None:
        features = torch.from_numpy(description_features(descriptions, dim=feature_dim, seed=seed))
    manifest = dict(manifest)
    manifest["load_options"] = {"feature_dim": feature_dim if compute_features else None,
                                "min_section_size": min_section_size, "seed": seed,
                                "features": "description TF-IDF -> TruncatedSVD -> L2"}
    # Name the release after the largest index file (bookworm, not bookworm-security).
    entries = sorted(manifest.get("index_files", []), key=lambda entry: -int(entry.get("packages", 0)))
    release = next((entry["release"] for entry in entries if entry.get("release")), {})
    where = " ".join(part for part in (release.get("Origin"), release.get("Version"), release.get("Codename")) if part)
    source = GraphSource(
        num_nodes=num_nodes,
        edge_index=torch.from_numpy(edges.astype(np.int64)),
        x=features,
        y=torch.from_numpy(y),
        class_names=class_names,
        node_names=names,
        item_pairs=torch.from_numpy(pairs.astype(np.int64)),
        item_names=tag_names,
        edge_type=torch.from_numpy(arrays["edge_type"].astype(np.int64)),
        name="debian-packages",
        description=(f"{where + ' ' if where else ''}binary packages: dependency edges (package -> dependency), "
                     "Section labels, description features, debtags as items"),
        manifest=manifest,
    )
    return source.validate()
