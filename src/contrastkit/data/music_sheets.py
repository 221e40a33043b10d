"""``music-sheets``: folk-tune snippets as sheet-music images paired with their synthesised audio.

The audio <-> sheet-music retrieval task of Carvalho, Widmer et al. (seed #11), on data that
ships inside installed packages: the Essen folk-song ABC collection of music21, engraved by
verovio and played by fluidsynth with Debian's TimGM6mb soundfont. Each row is one snippet
(``bars`` measures, default 4) of one tune, in two modalities:

* ``"sheet"``: ``[1, H, W]`` float ink in ``[0, 1]`` (0 paper, 1 black), default ``64 x 256``,
  one staff cropped and resized so the snippet fills the width;
* ``"audio"``: ``[n_mels, frames]`` float ``log(mel power + 1e-6)``, default ``80 x 128``, the
  same measures synthesised and pooled in time to a fixed length.

``labels`` are tune ids (row ``i``'s tune), so several snippets of a tune share a label: piece
identification. The split is by tune, seeded: no test tune (and so no test snippet) is seen
in training.

The snapshot is built once by :mod:`contrastkit.data.music_sheets_build` (0.3-0.5 s a tune on
an idle core; the default 1,000 tunes -- 2,616 snippets, 26 MB -- took 944 s on a core shared
with other jobs) into a cache folder named by the build options (``$CONTRASTKIT_CACHE/music-sheets/KEY``, default ``~/.cache/contrastkit/...``), or
built by the loader on first use; ``python -m contrastkit.data.music_sheets_build --tunes N``
builds one ahead. The manifest records the corpus files, tools, licences and the npz's sha256,
checked at every load.

Example:
    >>> splits = load_dataset("music-sheets", tunes=1000)          # builds the snapshot once
    >>> batch = splits.train.__getitems__([0, 1])
    >>> batch.inputs["audio"].shape, batch.inputs["sheet"].shape
    (torch.Size([2, 80, 128]), torch.Size([2, 1, 64, 256]))
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from contrastkit.data.batch import Batch
from contrastkit.data.registry import DatasetSplits, register_dataset

__all__ = ["MANIFEST_NAME", "SNAPSHOT_FORMAT", "SNAPSHOT_NAME", "TensorPairDataset", "default_snapshot_dir",
           "load_music_sheets", "read_snapshot"]

#: The snapshot's file names inside its folder.
SNAPSHOT_NAME = "music-sheets.npz"
MANIFEST_NAME = "music-sheets.manifest.json"
#: The format the builder writes and this module reads; bumped when the arrays change.
SNAPSHOT_FORMAT = "contrastkit/music-sheets/1"
#: The log-mel range the uint8 audio codes span (``log(1e-6)`` is silence).
LOG_MEL_LOW, LOG_MEL_HIGH = -13.8, 8.0
#: The arrays of the npz (the builder writes exactly these).
_ARRAY_NAMES = ("sheets", "audio", "tune", "bar_start", "seconds", "measures", "tune_ids")
_REBUILD_HINT = "rebuild it with `python -m contrastkit.data.music_sheets_build --out DIR` (or delete the folder)"


def sha256_of(path: str | Path) -> str:
    """The hex SHA-256 of the file at ``path``, read in 1 MiB blocks (recorded for each input file in the build manifest)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_snapshot_dir(options) -> Path:
    """The cache folder of a snapshot built with ``options`` (a ``BuildOptions``)."""
    root = os.environ.get("CONTRASTKIT_CACHE") or Path("~/.cache/contrastkit").expanduser()
    return Path(root).expanduser() / "music-sheets" / options.key()


def read_snapshot(folder: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """The manifest and arrays of a snapshot folder, checked against the manifest's format and sha256.

    Raises:
        FileNotFoundError: when the npz or the manifest is missing.
        ValueError: when the format, checksum or arrays do not match.
    """
    folder = Path(folder)
    manifest_path, npz_path = folder / MANIFEST_NAME, folder / SNAPSHOT_NAME
    for path in (manifest_path, npz_path):
        if not path.is_file():
            raise FileNotFoundError(f"music-sheets: snapshot file not found: {path}; {_REBUILD_HINT}")
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"music-sheets: cannot read {manifest_path}: {error}; {_REBUILD_HINT}") from error
    if not isinstance(manifest, dict) or manifest.get("format") != SNAPSHOT_FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ValueError(f"music-sheets: {manifest_path}: expected format {SNAPSHOT_FORMAT!r}, got {got!r}; "
                         f"{_REBUILD_HINT}")
    actual = sha256_of(npz_path)
    if actual != manifest.get("snapshot_sha256"):
        raise ValueError(f"music-sheets: checksum mismatch for {npz_path}: the manifest expects sha256 "
                         f"{manifest.get('snapshot_sha256')}, the file has {actual}; {_REBUILD_HINT}")
    with np.load(npz_path, allow_pickle=False) as archive:
        missing = [name for name in _ARRAY_NAMES if name not in archive.files]
        if missing:
            raise ValueError(f"music-sheets: {npz_path} lacks arrays {missing}; {_REBUILD_HINT}")
        arrays = {name: archive[name] for name in _ARRAY_NAMES}
    return manifest, arrays


class TensorPairDataset(Dataset):
    """Rows of two paired tensors (here ``"audio"`` and ``"sheet"``), stored as uint8 codes, decoded per batch.

    A batch is a :class:`Batch` with ``inputs = {name: float tensor [B, ...]}``, ``labels`` the
    group (tune) of each row and ``index`` the row numbers.

    Args:
        codes: ``{name: uint8 tensor [N, ...]}``, two entries.
        scales: ``{name: (low, high)}``: code ``c`` decodes to ``low + c / 255 * (high - low)``.
        labels: ``[N]`` group ids (rows of one group are snippets of one piece).
        group_names: one name per group id.
        channel_axis: names whose rows get a leading channel axis (``[H, W]`` -> ``[1, H, W]``).
    """

    def __init__(self, codes: dict[str, torch.Tensor], scales: dict[str, tuple[float, float]], labels: torch.Tensor,
                 group_names: Sequence[str], channel_axis: Sequence[str] = ()) -> None:
        if len(codes) != 2 or set(codes) != set(scales):
            raise ValueError(f"TensorPairDataset: expected two named tensors with a scale each, got {sorted(codes)} "
                             f"and scales {sorted(scales)}")
        rows = {name: int(tensor.shape[0]) for name, tensor in codes.items()}
        if len(set(rows.values())) != 1 or labels.shape != (next(iter(rows.values())),):
            raise ValueError(f"TensorPairDataset: expected equal row counts and labels [N], got {rows} and "
                             f"labels {tuple(labels.shape)}")
        self.codes, self.scales, self.labels = codes, dict(scales), labels.long()
        self.names = tuple(codes)
        self.group_names, self.channel_axis = list(group_names), frozenset(channel_axis)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def decode(self, name: str, rows: torch.Tensor | slice = slice(None)) -> torch.Tensor:
        """The float rows of one tensor (all rows by default)."""
        low, high = self.scales[name]
        values = self.codes[name][rows].float() * ((high - low) / 255.0) + low
        return values.unsqueeze(1) if name in self.channel_axis else values

    def shape(self, name: str) -> tuple[int, ...]:
        """One row's shape of a tensor, as batches give it."""
        shape = tuple(int(size) for size in self.codes[name].shape[1:])
        return (1, *shape) if name in self.channel_axis else shape

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.shape(self.names[-1])

    @property
    def num_classes(self) -> int:
        return len(self.group_names)

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        rows = torch.as_tensor(list(indices), dtype=torch.long)
        if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= len(self)):
            raise IndexError(f"TensorPairDataset: indices out of range for {len(self)} rows")
        return Batch(inputs={name: self.decode(name, rows) for name in self.names}, labels=self.labels[rows],
                     index=rows)

    def __getitem__(self, index: int) -> Batch:
        return self.__getitems__([int(index)])

    def __repr__(self) -> str:
        shapes = ", ".join(f"{name}={self.shape(name)}" for name in self.names)
        return f"TensorPairDataset(n={len(self)}, {shapes}, groups={self.num_classes})"


@register_dataset(
    "music-sheets",
    description="Essen folk-tune snippets (music21): verovio sheet image <-> fluidsynth log-mel, split by tune "
    "(snapshot built once, ~0.3 s a tune; needs `make audio-tools`)",
)
def load_music_sheets(*, data_dir: str | Path | None = None, tunes: int = 1000, bars: int = 4,
                      snippets_per_tune: int = 4, test_fraction: float = 0.2, seed: int = 0, split_seed: int = 0,
                      build: bool = True) -> DatasetSplits:
    """Sheet-image / log-mel snippet pairs, split by tune.

    Args:
        data_dir: the snapshot folder (``music-sheets.npz`` and its manifest); default: the
            cache folder of these build options. A folder without a snapshot is built into.
        tunes, bars, snippets_per_tune, seed: the build options (see
            :class:`~contrastkit.data.music_sheets_build.BuildOptions`; ``seed`` orders the tunes).
        test_fraction: the share of tunes held out (their snippets are the test split).
        split_seed: seeds the tune split.
        build: build a missing snapshot (else a missing one is a ``FileNotFoundError``).
    """
    from contrastkit.data.music_sheets_build import BuildOptions, build_snapshot

    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"data.test_fraction: expected a number in (0, 1), got {test_fraction}")
    options = BuildOptions(tunes=int(tunes), bars=int(bars), snippets_per_tune=int(snippets_per_tune), seed=int(seed))
    folder = Path(data_dir).expanduser() if data_dir is not None else default_snapshot_dir(options)
    if build and not ((folder / MANIFEST_NAME).is_file() and (folder / SNAPSHOT_NAME).is_file()):
        build_snapshot(folder, options)
    _, arrays = read_snapshot(folder)
    tune_ids = arrays["tune_ids"].tobytes().decode("utf-8").split("\n")
    tune = torch.from_numpy(arrays["tune"].astype(np.int64))
    if len(tune_ids) < 2 or int(tune.max()) >= len(tune_ids):
        raise ValueError(f"music-sheets: the snapshot in {folder} holds {len(tune_ids)} tunes; expected at least 2 "
                         f"with every snippet's tune listed; {_REBUILD_HINT}")
    order = torch.randperm(len(tune_ids), generator=torch.Generator().manual_seed(int(split_seed)))
    held_out = torch.zeros(len(tune_ids), dtype=torch.bool)
    held_out[order[: max(1, round(float(test_fraction) * len(tune_ids)))]] = True
    sheets, audio = torch.from_numpy(arrays["sheets"]), torch.from_numpy(arrays["audio"])

    def split(test: bool) -> TensorPairDataset:
        rows = torch.nonzero(held_out[tune] == test).flatten()
        groups, labels = torch.unique(tune[rows], return_inverse=True)  # dense tune ids within the split
        return TensorPairDataset({"audio": audio[rows], "sheet": sheets[rows]},
                                 {"audio": (LOG_MEL_LOW, LOG_MEL_HIGH), "sheet": (0.0, 1.0)}, labels,
                                 [tune_ids[group] for group in groups.tolist()], channel_axis=("sheet",))

    train, test = split(False), split(True)
    return DatasetSplits(
        train=train, test=test, num_classes=test.num_classes, input_shape=train.input_shape, name="music-sheets",
        description=(f"{len(train)} train / {len(test)} test snippets of {train.num_classes} / {test.num_classes} "
                     f"tunes ({bars} bars each; test tunes unseen), sheet {train.shape('sheet')}, "
                     f"audio {train.shape('audio')}"),
        modality="audio-sheet", class_names=test.group_names,
    )  # fmt: skip
