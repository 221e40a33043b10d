"""debian-packages: parsing, resolution rules, snapshot determinism and checks, features, the shipped snapshot.

The synthetic index below is small enough that every expected edge, type, label and tag is
written out by hand from the rules in the module docstring.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess

import numpy as np
import pytest
import torch

from contrastkit.data import debian_packages as dp
from contrastkit.data import debian_packages_build as build
from contrastkit.data.debian_packages import description_features, load_debian_packages
from contrastkit.data.debian_packages_build import build_snapshot, find_index_files, read_index_bytes, rebuild_from_apt

# File 1 (plain, with an InRelease): eight packages. File 2 (.gz, no release file): a newer
# dpkg without a Tag field (debtags are inherited) and an older app (ignored).
MAIN = """\
Package: app
Version: 1.0
Section: utils
Depends: libfoo (>= 1.2), libbar:any | libbaz, missing-pkg, mta
Pre-Depends: dpkg (>= 1.15)
Recommends: libfoo, editor, app
Description: command line tool for editing text files
 A long description that must not be read.
Tag: role::program, interface::commandline,
 use::editing

Package: dpkg
Version: 1.21
Section: admin
Description: package manager tool
Tag: role::program

Package: libbaz
Version: 2.0
Section: libs
Description: shared library for text parsing

Package: libc
Version: 2.36
Section: libs
Pre-Depends: nothing-at-all
Description: shared library of the C language

Package: libfoo
Version: 1.2-1
Section: libs
Provides: libfoo-abi (= 1)
Depends: libc (>= 2.34)
Description: shared library for editing text

Package: mailer
Version: 3
Section: contrib/mail
Provides: mta, editor
Description: mail transfer agent

Package: tool
Version: 0.1
Section: utils
Pre-Depends: libc
Depends: libfoo-abi | libc, nonexistent | libbaz:amd64, app, libc (>= 2)
Recommends: app
Description: command line tool for mail transfer

Package: vim
Version: 9.0
Section: editors
Provides: editor
Depends: libc
Recommends: libbaz
Description: text editor
Tag: use::editing, role::program, use::editing

Package: zdata
Version: 1
Description: data files for the text editor
"""

SECURITY = """\
Package: dpkg
Version: 1.22
Section: admin
Depends: libc
Description: package manager tool

Package: app
Version: 0.9
Section: utils
Depends: vim
Description: command line tool for editing text files
"""

RELEASE = """\
-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA256

Origin: Test
Codename: testing
Date: Sat, 11 Jul 2026 10:16:37 UTC
SHA256:
 0123 100 main/binary-amd64/Packages
"""

NAMES = ["app", "dpkg", "libbaz", "libc", "libfoo", "mailer", "tool", "vim", "zdata"]
APP, DPKG, LIBBAZ, LIBC, LIBFOO, MAILER, TOOL, VIM, ZDATA = range(9)
DEPENDS, PRE_DEPENDS, RECOMMENDS = 0, 1, 2
EXPECTED_EDGES = {
    (APP, DPKG): PRE_DEPENDS,
    (APP, LIBBAZ): DEPENDS,  # libbar:any is not in the index: the second alternative
    (APP, LIBFOO): DEPENDS,  # also recommended: Depends is stronger
    (APP, MAILER): DEPENDS,  # mta: a unique provider; "editor" has two providers and does not resolve
    (DPKG, LIBC): DEPENDS,  # from the newer dpkg (1.22) of the .gz file
    (LIBFOO, LIBC): DEPENDS,
    (TOOL, APP): DEPENDS,  # also recommended
    (TOOL, LIBBAZ): DEPENDS,  # libbaz:amd64, after a missing alternative
    (TOOL, LIBC): PRE_DEPENDS,  # Pre-Depends and two Depends groups
    (TOOL, LIBFOO): DEPENDS,  # libfoo-abi, a unique virtual package
    (VIM, LIBBAZ): RECOMMENDS,
    (VIM, LIBC): DEPENDS,
}
TAGS = ["interface::commandline", "role::program", "use::editing"]
EXPECTED_TAG_PAIRS = [(APP, 0), (APP, 1), (APP, 2), (DPKG, 1), (VIM, 1), (VIM, 2)]


def _write_index(folder, main=MAIN, security=SECURITY):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test_dists_testing_main_binary-amd64_Packages").write_text(main)
    (folder / "test_dists_testing_InRelease").write_text(RELEASE)
    (folder / "test_dists_testing-security_main_binary-amd64_Packages.gz").write_bytes(gzip.compress(security.encode()))
    # Files that are not binary package indexes.
    (folder / "test_dists_testing_main_i18n_Translation-en").write_text("Package: x\n")
    (folder / "test_dists_testing_main_source_Sources.xz").write_bytes(b"")
    return find_index_files(folder)


@pytest.fixture()
def snapshot(tmp_path):
    files = _write_index(tmp_path / "lists")
    build_snapshot(files, tmp_path / "snap")
    return tmp_path / "snap"


def test_find_index_files_picks_binary_packages_sorted(tmp_path):
    files = _write_index(tmp_path)
    assert [path.name for path in files] == [
        "test_dists_testing-security_main_binary-amd64_Packages.gz",
        "test_dists_testing_main_binary-amd64_Packages",
    ]
    assert find_index_files(tmp_path / "missing") == []


def test_edges_types_labels_and_tags_match_hand_derived(snapshot):
    source = load_debian_packages(snapshot, min_section_size=2, feature_dim=8)
    assert source.node_names == NAMES
    got = {(s, t): k for s, t, k in zip(*source.edge_index.tolist(), source.edge_type.tolist())}
    assert got == EXPECTED_EDGES
    # edge_index sorted by (source, target): deterministic order
    assert [tuple(edge) for edge in source.edge_index.t().tolist()] == sorted(EXPECTED_EDGES)
    # libs (3) and utils (2) stay, admin/editors/mail (1 each, mail from contrib/mail) merge; zdata has none.
    assert source.class_names == ["libs", "other", "utils"]
    assert source.y.tolist() == [2, 1, 0, 0, 0, 1, 2, 1, -1]
    assert source.item_names == TAGS
    assert [tuple(pair) for pair in source.item_pairs.t().tolist()] == EXPECTED_TAG_PAIRS
    assert source.x.shape == (9, 8) and source.x.dtype == torch.float32
    assert source.edge_index.dtype == torch.long and source.edge_type.dtype == torch.long
    counts = source.manifest["counts"]
    assert counts["nodes"] == 9 and counts["edges"] == 12 and counts["tags"] == 3 and counts["tag_pairs"] == 6
    assert counts["duplicates_merged"] == 2 and counts["tags_inherited_from_lower_versions"] == 1
    assert counts["edges_by_type"] == {"depends": 9, "pre-depends": 2, "recommends": 1}
    # missing-pkg, editor (ambiguous), nothing-at-all: three groups resolve to nothing
    assert counts["unresolved_relation_groups"] == 3
    assert counts["packages_without_section"] == 1
    assert source.manifest["section_sizes"] == {"admin": 1, "editors": 1, "libs": 3, "mail": 1, "utils": 2}


def test_min_section_size_zero_keeps_every_section(snapshot):
    source = load_debian_packages(snapshot, min_section_size=0, compute_features=False)
    assert source.class_names == ["admin", "editors", "libs", "mail", "utils"]
    assert source.y.tolist() == [4, 0, 2, 2, 2, 3, 4, 1, -1]
    assert source.x is None


def test_manifest_records_index_files(snapshot, tmp_path):
    manifest = json.loads((snapshot / dp.MANIFEST_NAME).read_text())
    security, main = manifest["index_files"]
    assert main["date"] == "2026-07-11T10:16:37+00:00" and main["date_source"] == "test_dists_testing_InRelease"
    assert main["release"] == {"Origin": "Test", "Codename": "testing"}
    assert security["date_source"] == "mtime"  # "test_dists_testing_" is not a prefix of "...testing-security_..."
    assert (main["packages"], security["packages"]) == (9, 2)
    import hashlib

    raw = (tmp_path / "lists" / main["file"]).read_bytes()
    assert main["sha256"] == hashlib.sha256(raw).hexdigest()
    assert manifest["snapshot_sha256"] == hashlib.sha256((snapshot / dp.SNAPSHOT_NAME).read_bytes()).hexdigest()
    assert manifest["builder_version"] == build.BUILDER_VERSION


def test_same_index_gives_identical_bytes(tmp_path):
    files = _write_index(tmp_path / "lists")
    first = build_snapshot(files, tmp_path / "a").read_bytes()
    second = build_snapshot(files, tmp_path / "b").read_bytes()
    assert first == second
    # and it is an ordinary npz
    with np.load(tmp_path / "a" / dp.SNAPSHOT_NAME) as archive:
        assert archive["edges"].dtype == np.int32 and archive["edges"].shape == (2, 12)
        assert archive["edge_type"].dtype == np.int8 and archive["section_codes"].shape == (9,)


def test_checksum_mismatch_is_a_clear_error(snapshot):
    path = snapshot / dp.SNAPSHOT_NAME
    data = bytearray(path.read_bytes())
    data[-30] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum mismatch.*build-debian-packages"):
        load_debian_packages(snapshot, compute_features=False)


@pytest.mark.parametrize("name", [dp.SNAPSHOT_NAME, dp.MANIFEST_NAME])
def test_missing_file_is_a_clear_error(snapshot, name):
    (snapshot / name).unlink()
    with pytest.raises(FileNotFoundError, match=f"{name}.*build-debian-packages --out DIR"):
        load_debian_packages(snapshot)


def test_features_do_not_depend_on_package_names(tmp_path):
    def renamed(text, mapping):
        for old, new in sorted(mapping.items(), key=lambda item: -len(item[0])):
            text = text.replace(f"Package: {old}\n", f"Package: {new}\n")
        return text

    base = load_debian_packages(build_snapshot(_write_index(tmp_path / "a"), tmp_path / "sa").parent, feature_dim=4)
    # Order-preserving renaming: identical features, bit for bit.
    keep = {name: f"python3-{name}" for name in NAMES}
    same_order = load_debian_packages(build_snapshot(_write_index(
        tmp_path / "b", renamed(MAIN, keep), renamed(SECURITY, keep)), tmp_path / "sb").parent, feature_dim=4)
    assert same_order.node_names == [keep[name] for name in NAMES]
    assert torch.equal(same_order.x, base.x)
    # A renaming that reverses the order: the same features per package (up to float rounding).
    flip = {name: f"pkg{8 - i}" for i, name in enumerate(NAMES)}
    reversed_ = load_debian_packages(build_snapshot(_write_index(
        tmp_path / "c", renamed(MAIN, flip), renamed(SECURITY, flip)), tmp_path / "sc").parent, feature_dim=4)
    assert reversed_.node_names == [flip[name] for name in reversed(NAMES)]
    assert torch.allclose(reversed_.x.flip(0), base.x, atol=1e-5)
    # ... while a changed description does change its row (so the check above can fail).
    edited = load_debian_packages(build_snapshot(_write_index(
        tmp_path / "d", MAIN.replace("Description: text editor", "Description: mail editor")), tmp_path / "sd").parent,
        feature_dim=4)
    assert not torch.allclose(edited.x[VIM], base.x[VIM], atol=1e-3)


def test_description_features_exact_path_keeps_tfidf_cosines():
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = ["red apple pie", "green apple tart", "red wine", "green tea", "apple wine", "tea pie", "unique words only"]
    features = description_features(texts, dim=16, seed=0)
    assert features.shape == (7, 16) and features.dtype == np.float32
    tfidf = TfidfVectorizer(sublinear_tf=True, min_df=2).fit_transform(texts).toarray()
    norms = np.linalg.norm(tfidf, axis=1, keepdims=True)
    cosine = (tfidf / np.where(norms > 0, norms, 1)) @ (tfidf / np.where(norms > 0, norms, 1)).T
    np.testing.assert_allclose(features @ features.T, cosine, atol=1e-5)
    assert not features[6].any()  # no word of the last text occurs twice: a zero row


def test_description_features_randomized_path_is_deterministic_and_normalised():
    generator = np.random.default_rng(0)
    words = [f"w{i}" for i in range(200)]
    texts = [" ".join(generator.choice(words, size=6)) for _ in range(300)]
    first = description_features(texts, dim=32, seed=3)
    assert first.shape == (300, 32)
    np.testing.assert_array_equal(first, description_features(texts, dim=32, seed=3))
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="positive int dim"):
        description_features(texts, dim=0)


def test_rebuild_from_apt_without_index_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}.*apt-get update"):
        rebuild_from_apt(tmp_path / "out", lists_dir=tmp_path)
    path = rebuild_from_apt(tmp_path / "out", lists_dir=_write_index(tmp_path / "lists")[0].parent)
    assert path == tmp_path / "out" / dp.SNAPSHOT_NAME and path.is_file()


@pytest.mark.skipif(shutil.which("lz4") is None, reason="needs the lz4 command")
def test_lz4_index_reads_like_plain(tmp_path):
    plain = tmp_path / "x_Packages"
    plain.write_text(MAIN)
    subprocess.run(["lz4", "-q", str(plain), str(tmp_path / "y_Packages.lz4")], check=True)
    assert read_index_bytes(tmp_path / "y_Packages.lz4") == MAIN.encode()


def test_lz4_without_any_tool_names_both(tmp_path, monkeypatch):
    path = tmp_path / "x_Packages.lz4"
    path.write_bytes(b"\x04\x22\x4d\x18")
    monkeypatch.setattr(build.shutil, "which", lambda name: None)
    monkeypatch.setattr(build, "APT_HELPER", str(tmp_path / "no-apt-helper"))
    with pytest.raises(FileNotFoundError, match="`lz4` command.*apt-helper"):
        read_index_bytes(path)


def test_shipped_snapshot_matches_its_manifest():
    manifest = json.loads((dp.DEFAULT_SNAPSHOT_DIR / dp.MANIFEST_NAME).read_text())
    assert (dp.DEFAULT_SNAPSHOT_DIR / dp.SNAPSHOT_NAME).stat().st_size <= 20 * 2**20
    source = load_debian_packages(compute_features=False)  # verifies the sha256
    counts = manifest["counts"]
    assert source.num_nodes == counts["nodes"] > 60_000
    assert source.num_edges == counts["edges"] and len(source.item_names) == counts["tags"]
    assert source.item_pairs.shape[1] == counts["tag_pairs"]
    assert int(source.item_pairs[0].unique().numel()) == counts["tagged_packages"]
    assert sum(manifest["section_sizes"].values()) == counts["nodes"] - counts["packages_without_section"]
    types = torch.bincount(source.edge_type, minlength=3).tolist()
    assert types == [counts["edges_by_type"][kind] for kind in dp.EDGE_TYPES]
    # Merged sections are exactly those below the threshold.
    small = {name for name, size in manifest["section_sizes"].items() if size < 100}
    assert "other" in source.class_names and not small & set(source.class_names)
    # Two facts of Debian: 0ad depends on 0ad-data and pre-depends on dpkg.
    node = {name: i for i, name in enumerate(source.node_names)}
    edges = {(s, t): k for s, t, k in zip(*source.edge_index.tolist(), source.edge_type.tolist())}
    assert edges[(node["0ad"], node["0ad-data"])] == 0 and edges[(node["0ad"], node["dpkg"])] == 1
    assert source.class_names[int(source.y[node["python3-numpy"]])] == "python"
