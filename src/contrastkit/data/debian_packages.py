"""``debian-packages``: the Debian binary-package dependency graph, from the index apt keeps.

Every Debian or Ubuntu machine that has run ``apt-get update`` holds the full package
index of its release in ``/var/lib/apt/lists`` (``*_Packages`` files, often lz4- or
xz-compressed). That index is a real, large, labelled graph that needs no download:
bookworm's ``main`` has 63,440 amd64 binary packages, each with a Section (58 of them),
a one-line description and, for about 30k packages, debtags (598 distinct ones).

The build is deterministic (:func:`build_snapshot`):

- **Merging.** Several index files (e.g. ``bookworm``, ``bookworm-updates`` and
  ``bookworm-security``) are read in sorted order; a package present more than once keeps
  its highest version (``debian.debian_support.Version``; on a tie, the first one read).
  Only its debtags may come from a lower version: the security and updates indexes carry
  no ``Tag`` field, so a package whose kept paragraph has none takes the tags of its
  highest version that has some (a security fix does not change what a package is).
- **Nodes** are the binary packages, sorted by name.
- **Edges** come from ``Depends``, ``Pre-Depends`` and ``Recommends``, directed from the
  package to its dependency. For each relation group (``a | b``) the first alternative
  that resolves to a package of the index is taken: a real package of that name, or else
  the single package that ``Provides`` the name (a virtual name with several providers
  does not resolve). Version constraints are ignored and arch qualifiers (``foo:any``)
  stripped. Self loops are dropped; a pair linked by several fields keeps the strongest
  type, ``Pre-Depends > Depends > Recommends`` (``edge_type`` 0 = Depends,
  1 = Pre-Depends, 2 = Recommends; see :data:`EDGE_TYPES`).
- **Labels** are the Section without its component prefix (``contrib/net`` -> ``net``).
  At load time, sections with fewer than ``min_section_size`` packages merge into
  ``other`` (the snapshot keeps every section).
- **Features** are computed at load time from the short description only (never the
  package name, whose prefix -- ``python3-``, ``lib``, ``golang-`` -- gives the section
  away): TF-IDF -> truncated SVD -> row L2 normalisation (:func:`description_features`;
  about 5 s for 63k packages on one core).
- **Items** are each package's debtags (``Tag``), as ``(package, tag)`` pairs: the
  package x tag matrix for recommendation (``debian-tags``).

The snapshot shipped in ``contrastkit/data/assets`` (``debian-packages.npz``, 1.8 MB, and
its ``debian-packages.manifest.json``) was built from Debian 12 (bookworm) amd64 ``main``
with ``bookworm-updates`` and ``bookworm-security``: 63,678 packages, 292,743 edges
(263,746 Depends, 997 Pre-Depends, 28,000 Recommends), 58 sections, 30,300 tagged
packages with 598 debtags (112,118 pairs). Rebuild it from the machine's own index with
``contrastkit data build-debian-packages --out DIR`` (:func:`rebuild_from_apt`).

Example:
    >>> source = load_debian_packages()
    >>> source.num_nodes, tuple(source.edge_index.shape), tuple(source.x.shape), len(source.class_names)
    (63678, (2, 292743), (63678, 128), 52)
"""

from __future__ import annotations

import email.utils
import hashlib
import io
import json
import re
import shutil
import subprocess
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from contrastkit.data.graph_source import GraphSource
from contrastkit.utils.atomic import atomic_write_bytes, atomic_write_json

#: The snapshot's file names inside its folder.
SNAPSHOT_NAME = "debian-packages.npz"
MANIFEST_NAME = "debian-packages.manifest.json"

#: The folder of the snapshot that ships with the package.
DEFAULT_SNAPSHOT_DIR = Path(__file__).parent / "assets"

#: The format of the snapshot this module writes and reads; bumped when the arrays change.
SNAPSHOT_FORMAT = "contrastkit/debian-packages/1"

#: The version of the builder (recorded in the manifest; bumped when the same index would build differently).
BUILDER_VERSION = 1

#: ``edge_type`` ids: the index is the id.
EDGE_TYPES = ("depends", "pre-depends", "recommends")

#: The folder where ``apt-get update`` leaves the index.
DEFAULT_LISTS_DIR = "/var/lib/apt/lists"

#: apt's own helper; ``apt-helper cat-file`` decompresses whatever apt can read.
APT_HELPER = "/usr/lib/apt/apt-helper"

#: The class that small sections merge into at load time.
OTHER_SECTION = "other"

REBUILD_HINT = "rebuild it with `contrastkit data build-debian-packages --out DIR`"

# Relation fields, strongest first: a pair linked by several keeps the first one's type.
_RELATION_FIELDS = (("Pre-Depends", 1), ("Depends", 0), ("Recommends", 2))
_STRENGTH = {1: 2, 0: 1, 2: 0}
_FIELDS = ["Package", "Version", "Section", "Description", "Depends", "Pre-Depends", "Recommends", "Provides", "Tag"]
_COMPRESSED_BY_TOOL = {".lz4": "lz4", ".zst": "zstd"}
_INDEX_NAME = re.compile(r"(^|_)Packages(\.(gz|xz|bz2|lzma|lz4|zst))?$")
_RELEASE_FIELD = re.compile(r"^(Origin|Label|Suite|Codename|Version|Date):[ \t]*(.*?)\s*$", re.MULTILINE)
# A zip entry's timestamp: fixed, so that the same index gives the same bytes (zip's epoch).
_ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_ARRAY_NAMES = ("names", "descriptions", "section_names", "section_codes", "tag_names", "edges", "edge_type", "tag_pairs")


# ----------------------------------------------------------------------------------------- reading the index


def find_index_files(lists_dir: str | Path = DEFAULT_LISTS_DIR) -> list[Path]:
    """The binary ``Packages`` index files in an apt lists folder, sorted by name.

    Matches ``Packages`` and ``*_Packages``, plain or compressed (``.gz``, ``.xz``,
    ``.bz2``, ``.lzma``, ``.lz4``, ``.zst``); source indexes, translations and
    ``Contents`` files are not matched.

    Args:
        lists_dir: the folder (apt's is ``/var/lib/apt/lists``).

    Returns:
        The files, sorted; empty when the folder has none or does not exist.
    """
    folder = Path(lists_dir).expanduser()
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if path.is_file() and _INDEX_NAME.search(path.name))


def read_index_bytes(path: str | Path) -> bytes:
    """The decompressed bytes of one index file (plain, ``.gz``, ``.xz``, ``.bz2``, ``.lz4``, ``.zst``).

    Python has no lz4 or zstd module in the standard library, so those go through the
    ``lz4``/``zstd`` command or apt's ``apt-helper cat-file``, whichever exists.

    Raises:
        FileNotFoundError: when the file does not exist, or it needs an external tool and
            neither the tool nor ``apt-helper`` is installed (both are named).
        ValueError: when decompression fails.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"debian-packages: index file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".gz":
            import gzip

            return gzip.decompress(path.read_bytes())
        if suffix in (".xz", ".lzma"):
            import lzma

            return lzma.decompress(path.read_bytes())
        if suffix == ".bz2":
            import bz2

            return bz2.decompress(path.read_bytes())
    except (OSError, EOFError, ValueError) as error:  # gzip.BadGzipFile is an OSError, lzma.LZMAError a ValueError
        raise ValueError(f"debian-packages: cannot decompress {path}: {error}") from error
    if suffix not in _COMPRESSED_BY_TOOL:
        return path.read_bytes()
    tool = _COMPRESSED_BY_TOOL[suffix]
    executable = shutil.which(tool)
    if executable is not None:
        command = [executable, "-dc", str(path)]
    elif Path(APT_HELPER).is_file():
        command = [APT_HELPER, "cat-file", str(path)]
    else:
        raise FileNotFoundError(
            f"debian-packages: cannot read {path}: {suffix} files need the `{tool}` command "
            f"(apt-get install {tool}) or apt's `{APT_HELPER} cat-file`, and neither was found"
        )
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip()
        raise ValueError(f"debian-packages: `{' '.join(command)}` failed (exit {result.returncode}): {message}")
    return result.stdout


@dataclass
class PackageIndex:
    """The merged package index as plain Python values, in node order (sorted by name).

    Attributes:
        names: the package names, sorted.
        descriptions: each package's short description (first line of ``Description``).
        sections: each package's Section without the component prefix; ``""`` when absent.
        edges: ``[2, E]`` int64, package -> dependency, sorted by (source, target).
        edge_type: ``[E]`` int64, see :data:`EDGE_TYPES`.
        tags: each package's debtags, sorted, unique.
        paragraphs: how many package paragraphs each index file held (in the given order).
        duplicates_merged: how many paragraphs lost to a higher (or equal, earlier) version.
        relation_groups: how many relation groups were read from the kept packages.
        unresolved_groups: how many of them resolved to no package of the index.
        tags_inherited: how many kept packages took their debtags from a lower version
            (the kept paragraph had no ``Tag`` field).
    """

    names: list[str]
    descriptions: list[str]
    sections: list[str]
    edges: np.ndarray
    edge_type: np.ndarray
    tags: list[list[str]]
    paragraphs: list[int]
    duplicates_merged: int
    relation_groups: int
    unresolved_groups: int
    tags_inherited: int


def _bare_name(name: str) -> str:
    # python-debian splits ``foo:any`` into name and archqual already; be safe with odd input.
    return name.split(":", 1)[0].strip()


def read_package_index(index_files: Sequence[str | Path]) -> PackageIndex:
    """Parse and merge index files into nodes, typed dependency edges, sections and tags.

    See the module docstring for the rules (merging by highest version, alternatives,
    unique ``Provides``, edge types).

    Args:
        index_files: the ``Packages`` files, read in the given order.

    Raises:
        ValueError: when no file is given or a file holds no package paragraph.
        FileNotFoundError: when a file does not exist (or cannot be decompressed here).
        ImportError: when python-debian is not installed.
    """
    try:
        from debian import deb822
        from debian.debian_support import Version
    except ImportError as error:  # pragma: no cover - the graph extra is installed by make
        raise ImportError("building debian-packages needs python-debian: pip install 'contrastkit[graph]'") from error

    if not index_files:
        raise ValueError("debian-packages: expected at least one Packages index file, got none")
    # name -> (Version, raw fields); only the fields the graph needs are kept.
    kept: dict[str, tuple[Version, dict[str, str]]] = {}
    # name -> (Version, Tag) of the highest version that has a Tag field: the security and
    # updates indexes carry no debtags, and a security fix does not change what a package is.
    tagged: dict[str, tuple[Version, str]] = {}
    paragraphs: list[int] = []
    duplicates = 0
    for path in index_files:
        count = 0
        data = io.BytesIO(read_index_bytes(path))
        for paragraph in deb822.Packages.iter_paragraphs(data, fields=_FIELDS, use_apt_pkg=False):
            name = paragraph.get("Package", "").strip()
            if not name:
                continue
            count += 1
            fields = {key: paragraph.get(key, "") for key in _FIELDS}
            version = Version(fields["Version"].strip() or "0")
            if fields["Tag"].strip() and (name not in tagged or version > tagged[name][0]):
                tagged[name] = (version, fields["Tag"])
            if name in kept:
                duplicates += 1
                if not version > kept[name][0]:
                    continue
            kept[name] = (version, fields)
        if count == 0:
            raise ValueError(f"debian-packages: {path} holds no package paragraph; expected a binary Packages index")
        paragraphs.append(count)

    names = sorted(kept)
    node_of = {name: node for node, name in enumerate(names)}
    records = [kept[name][1] for name in names]
    inherited = 0
    for name, fields in zip(names, records):
        if not fields["Tag"].strip() and name in tagged:
            fields["Tag"] = tagged[name][1]
            inherited += 1
    # A virtual name resolves only through a unique provider.
    providers: dict[str, set[int]] = {}
    for node, fields in enumerate(records):
        for group in deb822.PkgRelation.parse_relations(fields["Provides"]) if fields["Provides"].strip() else ():
            for alternative in group:
                providers.setdefault(_bare_name(alternative["name"]), set()).add(node)

    def resolve(name: str) -> int | None:
        name = _bare_name(name)
        if name in node_of:
            return node_of[name]
        found = providers.get(name)
        return next(iter(found)) if found is not None and len(found) == 1 else None

    best: dict[tuple[int, int], int] = {}
    groups = unresolved = 0
    for node, fields in enumerate(records):
        for field_name, kind in _RELATION_FIELDS:
            text = fields[field_name]
            if not text.strip():
                continue
            for group in deb822.PkgRelation.parse_relations(text):
                groups += 1
                target = next((t for t in (resolve(alt["name"]) for alt in group) if t is not None), None)
                if target is None:
                    unresolved += 1
                    continue
                if target == node:
                    continue
                key = (node, target)
                if key not in best or _STRENGTH[kind] > _STRENGTH[best[key]]:
                    best[key] = kind
    pairs = sorted(best)
    edges = np.array(pairs, dtype=np.int64).reshape(-1, 2).T.copy()
    edge_type = np.array([best[pair] for pair in pairs], dtype=np.int64)
    return PackageIndex(
        names=names,
        descriptions=[fields["Description"].split("\n", 1)[0].strip() for fields in records],
        sections=[fields["Section"].strip().split("/")[-1].strip() for fields in records],
        edges=edges,
        edge_type=edge_type,
        tags=[sorted({tag.strip() for tag in fields["Tag"].split(",")} - {""}) for fields in records],
        paragraphs=paragraphs,
        duplicates_merged=duplicates,
        relation_groups=groups,
        unresolved_groups=unresolved,
        tags_inherited=inherited,
    )


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


# ----------------------------------------------------------------------------------------- snapshot


def _encode_strings(strings: Sequence[str]) -> np.ndarray:
    for text in strings:
        if "\n" in text:
            raise ValueError(f"debian-packages: a string table entry holds a line break: {text!r}")
    return np.frombuffer("\n".join(strings).encode("utf-8"), dtype=np.uint8).copy()


def _decode_strings(array: np.ndarray, count: int | None = None) -> list[str]:
    text = array.tobytes().decode("utf-8")
    strings = text.split("\n") if (text or count) else []
    if count is not None and len(strings) != count:
        raise ValueError(f"expected {count} strings, got {len(strings)}")
    return strings


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """``np.savez_compressed``'s format with fixed zip metadata, so equal arrays give equal bytes.

    ``np.savez_compressed`` stamps every entry with the current time; here each entry has
    zip's epoch as its date, fixed permissions and creator, and deflate level 9.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, array in arrays.items():
            entry = io.BytesIO()
            np.lib.format.write_array(entry, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            archive.writestr(info, entry.getvalue(), compresslevel=9)
    return buffer.getvalue()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _release_file(index_file: Path) -> Path | None:
    """The ``InRelease`` (or ``Release``) file of an index file: the longest matching name prefix."""
    best: tuple[int, int, Path] | None = None
    for candidate in index_file.parent.iterdir():
        for suffix, preference in (("InRelease", 1), ("Release", 0)):
            if candidate.name.endswith(suffix) and candidate.is_file():
                prefix = candidate.name[: -len(suffix)]
                if (prefix == "" or prefix.endswith("_")) and index_file.name.startswith(prefix):
                    key = (len(prefix), preference, candidate)
                    if best is None or key[:2] > best[:2]:
                        best = key
                break
    return None if best is None else best[2]


def _index_file_entry(path: Path, packages: int) -> dict:
    entry: dict = {"file": path.name, "path": str(path.resolve()), "bytes": path.stat().st_size,
                   "sha256": _sha256(path), "packages": packages}
    release = _release_file(path)
    fields = {}
    if release is not None:
        fields = dict(_RELEASE_FIELD.findall(release.read_text("utf-8", errors="replace")))
        entry["release_file"] = release.name
        entry["release"] = {key: value for key, value in fields.items() if key != "Date"}
    try:
        date = email.utils.parsedate_to_datetime(fields["Date"]).astimezone(timezone.utc)
        entry.update(date=date.isoformat(), date_source=release.name)
    except (KeyError, TypeError, ValueError):  # no release file, no Date:, or a date that does not parse
        mtime = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
        entry.update(date=mtime.isoformat(), date_source="mtime")
    return entry


def build_snapshot(index_files: Sequence[str | Path], out_dir: str | Path) -> Path:
    """Build ``debian-packages.npz`` and its manifest from Packages index files.

    The npz holds the string tables (package names, short descriptions, section names, tag
    names) as ``uint8`` arrays of ``"\\n"``-joined UTF-8, ``section_codes`` ``[N]`` int16
    (``-1``: no Section), ``edges`` ``[2, E]`` int32, ``edge_type`` ``[E]`` int8 and
    ``tag_pairs`` ``[2, T]`` int32. The same index gives byte-identical npz files. The
    manifest records every index file (name, path, size, sha256, package count, and its
    ``Date:`` from the matching ``InRelease``, else the file's mtime), the counts, the
    npz's sha256 and the builder version. Both files are written atomically, npz first.

    Args:
        index_files: the ``Packages`` files to merge (see :func:`find_index_files`).
        out_dir: the folder to write into (created when missing).

    Returns:
        The path of the npz file.

    Raises:
        ValueError, FileNotFoundError: see :func:`read_package_index`.
    """
    files = [Path(path) for path in index_files]
    index = read_package_index(files)
    section_names = sorted(set(index.sections) - {""})
    section_of = {name: code for code, name in enumerate(section_names)}
    tag_names = sorted({tag for tags in index.tags for tag in tags})
    tag_of = {name: code for code, name in enumerate(tag_names)}
    tag_pairs = np.array([(node, tag_of[tag]) for node, tags in enumerate(index.tags) for tag in tags],
                         dtype=np.int32).reshape(-1, 2).T
    section_codes = np.array([section_of.get(section, -1) for section in index.sections], dtype=np.int16)
    arrays = {
        "names": _encode_strings(index.names),
        "descriptions": _encode_strings(index.descriptions),
        "section_names": _encode_strings(section_names),
        "section_codes": section_codes,
        "tag_names": _encode_strings(tag_names),
        "edges": index.edges.astype(np.int32),
        "edge_type": index.edge_type.astype(np.int8),
        "tag_pairs": tag_pairs,
    }
    payload = _npz_bytes(arrays)
    out = Path(out_dir).expanduser()
    npz_path = out / SNAPSHOT_NAME
    atomic_write_bytes(npz_path, payload)
    sizes = np.bincount(section_codes[section_codes >= 0], minlength=len(section_names))
    manifest = {
        "format": SNAPSHOT_FORMAT,
        "builder": "contrastkit.data.debian_packages.build_snapshot",
        "builder_version": BUILDER_VERSION,
        "snapshot": SNAPSHOT_NAME,
        "snapshot_sha256": hashlib.sha256(payload).hexdigest(),
        "snapshot_bytes": len(payload),
        "index_files": [_index_file_entry(path, count) for path, count in zip(files, index.paragraphs)],
        "counts": {
            "nodes": len(index.names),
            "edges": int(index.edges.shape[1]),
            "edges_by_type": {kind: int((index.edge_type == code).sum()) for code, kind in enumerate(EDGE_TYPES)},
            "sections": len(section_names),
            "packages_without_section": int((section_codes < 0).sum()),
            "tagged_packages": sum(1 for tags in index.tags if tags),
            "tags": len(tag_names),
            "tag_pairs": int(tag_pairs.shape[1]),
            "paragraphs_read": sum(index.paragraphs),
            "duplicates_merged": index.duplicates_merged,
            "relation_groups": index.relation_groups,
            "unresolved_relation_groups": index.unresolved_groups,
            "tags_inherited_from_lower_versions": index.tags_inherited,
        },
        "section_sizes": {name: int(size) for name, size in zip(section_names, sizes)},
        "rules": {
            "nodes": "binary packages sorted by name; highest Version kept when a name repeats",
            "edges": "package -> dependency from Pre-Depends, Depends, Recommends; first alternative that "
            "resolves (a real package, or a unique Provides); no self loops; strongest type kept",
            "edge_types": list(EDGE_TYPES),
            "labels": "Section without the component prefix",
            "items": "debtags (Tag field); from the highest version that has one when the kept version has none",
        },
    }
    atomic_write_json(out / MANIFEST_NAME, manifest)
    return npz_path


def rebuild_from_apt(out_dir: str | Path, lists_dir: str | Path = DEFAULT_LISTS_DIR) -> Path:
    """Build the snapshot from the machine's apt index (``contrastkit data build-debian-packages``).

    Args:
        out_dir: the folder to write ``debian-packages.npz`` and its manifest into.
        lists_dir: apt's lists folder.

    Returns:
        The path of the npz file.

    Raises:
        FileNotFoundError: when ``lists_dir`` holds no binary Packages index (run ``apt-get update``).
    """
    files = find_index_files(lists_dir)
    if not files:
        raise FileNotFoundError(
            f"debian-packages: no binary Packages index files in {lists_dir}; run `apt-get update` "
            "(as root) to download the index, or pass the folder that holds *_Packages files"
        )
    return build_snapshot(files, out_dir)


# ----------------------------------------------------------------------------------------- loading


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
