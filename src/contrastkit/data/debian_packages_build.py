"""Build the ``debian-packages`` snapshot from the package index apt keeps (``contrastkit data build-debian-packages``).

Reading the index and writing the snapshot are a maintainer's job, run once per release;
loading it at run time is :mod:`contrastkit.data.debian_packages`, which never needs this
module. The format (file names, arrays, manifest) is defined there.

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
  1 = Pre-Depends, 2 = Recommends; see :data:`contrastkit.data.debian_packages.EDGE_TYPES`).
- **Labels** are the Section without its component prefix (``contrib/net`` -> ``net``).
  At load time, sections with fewer than ``min_section_size`` packages merge into
  ``other`` (the snapshot keeps every section).
- **Features** are not in the snapshot: the loader computes them from the short
  descriptions (:func:`contrastkit.data.debian_packages.description_features`).
- **Items** are each package's debtags (``Tag``), as ``(package, tag)`` pairs: the
  package x tag matrix for recommendation (``debian-tags``).
"""

from __future__ import annotations

import email.utils
import hashlib
import io
import re
import shutil
import subprocess
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from contrastkit.data.debian_packages import (
    EDGE_TYPES,
    MANIFEST_NAME,
    SNAPSHOT_FORMAT,
    SNAPSHOT_NAME,
    _sha256,
)
from contrastkit.utils.atomic import atomic_write_bytes, atomic_write_json

#: The version of the builder (recorded in the manifest; bumped when the same index would build differently).
BUILDER_VERSION = 1

#: The folder where ``apt-get update`` leaves the index.
DEFAULT_LISTS_DIR = "/var/lib/apt/lists"

#: apt's own helper; ``apt-helper cat-file`` decompresses whatever apt can read.
APT_HELPER = "/usr/lib/apt/apt-helper"

# Relation fields, strongest first: a pair linked by several keeps the first one's type.
_RELATION_FIELDS = (("Pre-Depends", 1), ("Depends", 0), ("Recommends", 2))
_STRENGTH = {1: 2, 0: 1, 2: 0}
_FIELDS = ["Package", "Version", "Section", "Description", "Depends", "Pre-Depends", "Recommends", "Provides", "Tag"]
_COMPRESSED_BY_TOOL = {".lz4": "lz4", ".zst": "zstd"}
_INDEX_NAME = re.compile(r"(^|_)Packages(\.(gz|xz|bz2|lzma|lz4|zst))?$")
_RELEASE_FIELD = re.compile(r"^(Origin|Label|Suite|Codename|Version|Date):[ \t]*(.*?)\s*$", re.MULTILINE)

# A zip entry's timestamp: fixed, so that the same index gives the same bytes (zip's epoch).
_ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)


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


# ----------------------------------------------------------------------------------------- snapshot


def _encode_strings(strings: Sequence[str]) -> np.ndarray:
    for text in strings:
        if "\n" in text:
            raise ValueError(f"debian-packages: a string table entry holds a line break: {text!r}")
    return np.frombuffer("\n".join(strings).encode("utf-8"), dtype=np.uint8).copy()


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
