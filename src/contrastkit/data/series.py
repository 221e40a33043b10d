"""Time-series classification datasets: the UCR/UEA sets bundled with aeon, and your own series.

Every classification problem that ships inside the installed ``aeon`` package
(``aeon/datasets/data/<Name>/<Name>_TRAIN.ts`` and ``_TEST.ts`` with ``@classLabel true``)
is registered as ``ucr:<Name>`` (univariate) or ``uea:<Name>`` (multivariate), and so is
the equal-length twin aeon ships beside an unequal-length set (``<Name>_eq_TRAIN.ts`` and
``_TEST.ts`` in the same folder), as ``ucr:<Name>_eq`` or ``uea:<Name>_eq``. Only the
``.ts`` headers are read when the names are registered, and ``aeon`` itself is imported
only when a set is loaded; nothing is ever downloaded. The ``series`` dataset loads a
user's own ``.npy`` or ``.csv`` files.

Every loader returns float32 inputs ``[N, C, T]`` (``C`` channels, ``T`` time steps):
series of unequal length are right-padded with NaN to the longest length over train and
test, and class labels are mapped to ``0..K-1`` by the sorted union of the train and test
class names, so that the two splits agree.

Normalisation (``normalize="ts2vec"``, the default) follows the TS2Vec protocol
(Yue et al., "TS2Vec: Towards Universal Representation of Time Series", AAAI 2022;
``datautils.py`` of github.com/zhihanyue/ts2vec):

- UCR (univariate) sets: the archive already z-normalises each series, except for the
  sets in :data:`TS2VEC_UNNORMALIZED_UCR` (and :data:`BUNDLED_UNNORMALIZED`); those are
  standardised with the mean and standard deviation of all training values (one pair for
  the whole set, to keep the amplitude differences between series). The others are
  returned as they are.
- UEA (multivariate) sets and your own series: per-channel standardisation fitted on the
  training split (like scikit-learn's ``StandardScaler`` on ``[N * T, C]``).

Statistics ignore NaN, and NaN padding stays NaN. ``normalize="none"`` returns the values
as read.

Example:
    >>> splits = load_dataset("ucr:GunPoint")
    >>> splits.train.inputs.shape, splits.test.inputs.shape, splits.num_classes
    (torch.Size([50, 1, 150]), torch.Size([150, 1, 150]), 2)
"""

from __future__ import annotations

import csv
import importlib.util
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from contrastkit.data.arrays import ArrayDataset
from contrastkit.data.registry import DatasetSplits, register_dataset
from contrastkit.data.splits import split_indices, test_size_from_fraction

#: The normalisation modes every series loader accepts.
NORMALIZE_MODES = ("ts2vec", "none")

#: UCR sets that the archive does not z-normalise per series; TS2Vec standardises these
#: (and only these) with the training set's global mean and standard deviation.
#: Copied from ``load_UCR`` in TS2Vec's ``datautils.py``.
TS2VEC_UNNORMALIZED_UCR = frozenset({
    "AllGestureWiimoteX", "AllGestureWiimoteY", "AllGestureWiimoteZ", "BME", "Chinatown", "Crop",
    "EOGHorizontalSignal", "EOGVerticalSignal", "Fungi", "GestureMidAirD1", "GestureMidAirD2",
    "GestureMidAirD3", "GesturePebbleZ1", "GesturePebbleZ2", "GunPointAgeSpan",
    "GunPointMaleVersusFemale", "GunPointOldVersusYoung", "HouseTwenty", "InsectEPGRegularTrain",
    "InsectEPGSmallTrain", "MelbournePedestrian", "PickupGestureWiimoteZ", "PigAirwayPressure",
    "PigArtPressure", "PigCVP", "PLAID", "PowerCons", "Rock", "SemgHandGenderCh2",
    "SemgHandMovementCh2", "SemgHandSubjectCh2", "ShakeGestureWiimoteZ", "SmoothSubspace", "UMD",
})  # fmt: skip

#: Univariate sets bundled with aeon that TS2Vec's list does not name but whose series are
#: not z-normalised either, so ``"ts2vec"`` standardises them like the listed ones:
#: ``UnitTest`` is Chinatown (listed) with a reduced test split (its test file says so), and
#: ``Covid3Month_disc`` is not a UCR set at all but a discretised regression set of raw
#: death counts. The protocol's premise, that the archive already z-normalised each series,
#: holds for neither.
BUNDLED_UNNORMALIZED = frozenset({"UnitTest", "Covid3Month_disc"})

#: File endings the ``series`` dataset reads as series, and as labels.
SERIES_EXTENSIONS = (".npy", ".csv")
LABEL_EXTENSIONS = (".npy", ".csv", ".txt")


# --------------------------------------------------------------------------------------
# .ts headers and discovery of aeon's bundled sets
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TsProblem:
    """A classification problem stored as ``<folder>/<name>/<name>_TRAIN.ts`` and ``_TEST.ts``.

    Attributes:
        name: the problem's name (the folder's name), e.g. ``"GunPoint"``.
        train_path: the training ``.ts`` file.
        test_path: the test ``.ts`` file.
        univariate: whether the series have one channel (``@univariate``).
        channels: the number of channels, or ``None`` when neither header nor data says.
        lengths: ``(shortest, longest)`` series length over train and test, or ``None``.
        train_size: the number of training series.
        test_size: the number of test series.
        class_values: the class names the header declares (``@classLabel true ...``), as written.
        twin_of: for an equal-length twin (``<Name>_eq``, shipped beside an unequal-length
            ``<Name>``), the name of the set it is a copy of; ``None`` otherwise.
    """

    name: str
    train_path: Path
    test_path: Path
    univariate: bool
    channels: int | None
    lengths: tuple[int, int] | None
    train_size: int
    test_size: int
    class_values: tuple[str, ...]
    twin_of: str | None = None

    @property
    def archive(self) -> str:
        """``"ucr"`` for univariate problems, ``"uea"`` for multivariate ones."""
        return "ucr" if self.univariate else "uea"

    @property
    def registered_name(self) -> str:
        """The dataset name, e.g. ``"ucr:GunPoint"``."""
        return f"{self.archive}:{self.name}"

    def description(self) -> str:
        """A one-line description for ``contrastkit list``."""
        parts = [f"{self.train_size} train / {self.test_size} test"]
        if self.channels is not None:
            parts.append(f"{self.channels} channel{'s' if self.channels != 1 else ''}")
        if self.lengths is not None:
            shortest, longest = self.lengths
            parts.append(f"length {longest}" if shortest == longest else f"length {shortest}-{longest} (unequal)")
        parts.append(f"{len(self.class_values)} classes")
        origin = "aeon bundled" if self.twin_of is None else f"aeon bundled, equal-length twin of {self.archive}:{self.twin_of}"
        return f"{self.archive.upper()} {self.name} ({origin}): {', '.join(parts)}"

    @property
    def normalisation_name(self) -> str:
        """The name the TS2Vec normalisation lists are checked against: a twin's source set."""
        return self.name if self.twin_of is None else self.twin_of


def read_ts_header(path: str | Path) -> dict[str, object]:
    """Read the ``@`` header of a ``.ts`` file (up to ``@data``), without the data.

    Keys are lower-cased as aeon does (``problemname``, ``univariate``, ``equallength``,
    ``serieslength``, ``dimensions``, ``classlabel``, ``targetlabel``, ``timestamps``,
    ``missing``); booleans are parsed, ``class_values`` keeps the names as written.
    Defaults follow aeon's reader: univariate, equal length, no class label.

    Args:
        path: the ``.ts`` file.

    Returns:
        The header fields.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: when the file has no ``@data`` line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"series: .ts file not found: {path}")
    header: dict[str, object] = {
        "univariate": True, "equallength": True, "classlabel": False, "targetlabel": False,
        "timestamps": False, "missing": False, "class_values": (),
    }  # fmt: skip
    # Binary readline (not iteration) so that tell() gives where the data starts.
    with path.open("rb") as file:
        for raw in iter(file.readline, b""):
            tokens = raw.decode("utf-8", errors="replace").split()
            if not tokens or not tokens[0].startswith("@"):
                continue  # comments start with '#' or '%'
            key, values = tokens[0][1:].lower(), tokens[1:]
            if key == "data":
                header["data_offset"] = file.tell()
                return header
            value = values[0].lower() if values else ""
            if key in ("univariate", "equallength", "targetlabel", "timestamps", "missing"):
                header[key] = value == "true"
            elif key == "classlabel":
                header["classlabel"] = value == "true"
                header["class_values"] = tuple(values[1:]) if value == "true" else ()
            elif key in ("serieslength", "dimensions") and value.isdigit():
                header[key] = int(value)
            elif key == "problemname":
                header[key] = values[0] if values else ""
    raise ValueError(f"series: {path} is not a .ts file: expected an @data line after the header")


def _scan_ts_data(path: Path, header: dict[str, object]) -> tuple[int, int | None, tuple[int, int] | None]:
    """``(rows, channels, (shortest, longest))`` of a ``.ts`` file's data, from its bytes.

    Counting bytes is cheap (a few milliseconds for every bundled set together), so the
    list shows real sizes without parsing a single number.
    """
    with path.open("rb") as file:
        file.seek(int(header["data_offset"]))
        rows = [line for line in file.read().split(b"\n") if line.strip()]
    if not rows or header["timestamps"]:
        return len(rows), header.get("dimensions"), None  # type: ignore[return-value]
    # Channels are separated by ':', and the class label follows the last one.
    channels = rows[0].count(b":")
    if header["equallength"] and isinstance(header.get("serieslength"), int):
        length = int(header["serieslength"])  # type: ignore[arg-type]
        return len(rows), channels, (length, length)
    if header["equallength"]:
        length = rows[0].split(b":", 1)[0].count(b",") + 1
        return len(rows), channels, (length, length)
    lengths = [row.split(b":", 1)[0].count(b",") + 1 for row in rows]
    return len(rows), channels, (min(lengths), max(lengths))


def find_ts_classification_problems(folder: str | Path) -> list[TsProblem]:
    """The classification problems in ``folder``, sorted by name.

    A problem is a sub-folder ``<Name>`` holding both ``<Name>_TRAIN.ts`` and
    ``<Name>_TEST.ts`` whose training header says ``@classLabel true`` (and not
    ``@targetlabel true``). The equal-length twin that aeon ships beside an
    unequal-length set, ``<Name>_eq_TRAIN.ts`` and ``<Name>_eq_TEST.ts`` in the same
    folder (e.g. ``PickupGestureWiimoteZ_eq``, ``JapaneseVowels_eq``), is a problem of
    its own named ``<Name>_eq`` (with :attr:`TsProblem.twin_of` set to ``<Name>``); it
    needs no ``<Name>`` pair beside it. Other files there are ignored, e.g. train-only
    sets such as ``UnitTestTimeStamps``.

    Args:
        folder: the folder to scan (aeon's is :func:`aeon_data_dir`).

    Returns:
        One :class:`TsProblem` per problem; empty when the folder does not exist.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    problems = []
    for directory in sorted(folder.iterdir()):
        for name, twin_of in ((directory.name, None), (f"{directory.name}_eq", directory.name)):
            problem = _read_ts_problem(directory, name, twin_of)
            if problem is not None:
                problems.append(problem)
    return sorted(problems, key=lambda problem: problem.name)


def _read_ts_problem(directory: Path, name: str, twin_of: str | None) -> TsProblem | None:
    """The problem ``<directory>/<name>_TRAIN.ts`` + ``_TEST.ts``, or ``None`` when it is not one."""
    train_path = directory / f"{name}_TRAIN.ts"
    test_path = directory / f"{name}_TEST.ts"
    if not (train_path.is_file() and test_path.is_file()):
        return None
    try:
        train_header, test_header = read_ts_header(train_path), read_ts_header(test_path)
    except (OSError, ValueError):
        return None  # a damaged file must not break `contrastkit list`; loading it reports the error
    if not train_header["classlabel"] or train_header["targetlabel"]:
        return None  # regression (TSER) problems carry a numeric target, not a class
    train_size, train_channels, train_lengths = _scan_ts_data(train_path, train_header)
    test_size, test_channels, test_lengths = _scan_ts_data(test_path, test_header)
    channels = train_channels if train_channels is not None else test_channels
    if channels is None and train_header["univariate"]:
        channels = 1
    lengths = None
    if train_lengths is not None and test_lengths is not None:
        lengths = (min(train_lengths[0], test_lengths[0]), max(train_lengths[1], test_lengths[1]))
    return TsProblem(
        name=name,
        train_path=train_path,
        test_path=test_path,
        univariate=bool(train_header["univariate"]),
        channels=channels,
        lengths=lengths,
        train_size=train_size,
        test_size=test_size,
        class_values=tuple(train_header["class_values"]),  # type: ignore[arg-type]
        twin_of=twin_of,
    )


def aeon_data_dir() -> Path | None:
    """The folder of datasets bundled with the installed aeon, or ``None`` without aeon.

    Found with :func:`importlib.util.find_spec`, which locates the package without
    importing it (importing aeon takes seconds).
    """
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


# --------------------------------------------------------------------------------------
# Shared steps: padding, labels, normalisation
# --------------------------------------------------------------------------------------


def pad_series(series: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Stack series ``[C, T_i]`` into ``[N, C, length]``, right-padding each with NaN.

    Args:
        series: ``N`` float arrays ``[C, T_i]`` with the same ``C`` and ``T_i <= length``.
        length: the output length.

    Returns:
        A float64 array ``[N, C, length]``.
    """
    channels = series[0].shape[0] if len(series) else 0
    out = np.full((len(series), channels, length), np.nan, dtype=np.float64)
    for row, values in enumerate(series):
        out[row, :, : values.shape[1]] = values
    return out


def _pad_to(array: np.ndarray, length: int) -> np.ndarray:
    if array.shape[2] == length:
        return array
    out = np.full((*array.shape[:2], length), np.nan, dtype=array.dtype)
    out[:, :, : array.shape[2]] = array
    return out


def _check_no_empty_series(array: np.ndarray, source: str) -> None:
    empty = np.isnan(array).all(axis=(1, 2))
    if empty.any():
        rows = np.flatnonzero(empty)
        shown = ", ".join(str(int(row)) for row in rows[:5]) + (", ..." if len(rows) > 5 else "")
        raise ValueError(
            f"series: {source}: series {shown} (0-based) {'is' if len(rows) == 1 else 'are'} all NaN; "
            "expected at least one value per series (drop empty series)"
        )


def _sort_key(values: Sequence[str]) -> Callable[[str], object]:
    """Sort numerically when every name is a number (so that '10' follows '9'), else as text."""
    try:
        numbers = {value: float(value) for value in values}
    except ValueError:
        return lambda value: value
    if any(math.isnan(number) for number in numbers.values()):
        return lambda value: value
    return lambda value: (numbers[value], value)


def encode_labels(train: Sequence[str], test: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Map class names to ``0..K-1`` by the sorted union of the train and test names.

    Names sort numerically when all of them are numbers, else as text. A test class that
    never occurs in training still gets its own index.

    Args:
        train: the training labels, as strings.
        test: the test labels, as strings (or ``None``).

    Returns:
        ``(train_indices, test_indices, class_names)``, indices as int64 arrays.
    """
    union = set(train) | set(test or ())
    class_names = sorted(union, key=_sort_key(list(union)))
    index = {name: position for position, name in enumerate(class_names)}
    train_indices = np.array([index[name] for name in train], dtype=np.int64)
    test_indices = None if test is None else np.array([index[name] for name in test], dtype=np.int64)
    return train_indices, test_indices, class_names


def standardize_series(
    train: np.ndarray, test: np.ndarray, *, per_channel: bool, source: str = "series"
) -> tuple[np.ndarray, np.ndarray]:
    """Standardise ``[N, C, T]`` arrays with the training split's NaN-aware mean and std.

    ``per_channel=True`` fits one mean and std per channel over all series and time steps
    (scikit-learn's ``StandardScaler`` on ``[N * T, C]``); ``False`` fits one pair for
    everything. The std is the population one (``ddof=0``); a constant channel keeps a
    scale of 1, as in scikit-learn. NaN stays NaN.

    Args:
        train: the training series ``[N, C, T]``.
        test: the test series ``[M, C, T']``.
        per_channel: one mean/std per channel, or one for the whole set.
        source: what to name in error messages.

    Returns:
        ``(train, test)`` standardised, as float64 arrays.

    Raises:
        ValueError: when a channel has no value at all in the training split.
    """
    axes = (0, 2) if per_channel else (0, 1, 2)
    observed = ~np.isnan(train)
    empty = ~observed.any(axis=axes)
    if np.any(empty):
        raise ValueError(
            f"series: {source}: cannot standardise: channel(s) "
            f"{', '.join(str(int(c)) for c in np.flatnonzero(np.atleast_1d(empty)))} are NaN in every training series"
        )
    mean = np.nanmean(train, axis=axes, keepdims=True)
    std = np.nanstd(train, axis=axes, keepdims=True)
    std = np.where(std > 0, std, 1.0)
    return (train - mean) / std, (test - mean) / std


def _check_normalize(normalize: str, what: str) -> None:
    if normalize not in NORMALIZE_MODES:
        raise ValueError(f"{what}: expected normalize to be one of {', '.join(map(repr, NORMALIZE_MODES))}, got {normalize!r}")


def _to_tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


# --------------------------------------------------------------------------------------
# aeon's bundled UCR/UEA sets
# --------------------------------------------------------------------------------------


def _read_ts_split(path: Path) -> tuple[list[np.ndarray], list[str]]:
    """The series ``[C, T_i]`` and label strings of one ``.ts`` file, read by aeon."""
    # Imported here, not at the top: importing aeon takes seconds.
    from aeon.datasets import load_from_ts_file

    # A plain file reader: unlike load_classification, it never looks for or downloads files.
    data, labels = load_from_ts_file(str(path), return_type="auto")
    # aeon returns a 3-D array for equal-length sets and a list of [C, T_i] arrays otherwise.
    series = [np.asarray(values, dtype=np.float64) for values in data]
    return series, [str(label) for label in labels]


def load_ts_problem(problem: TsProblem, *, normalize: str = "ts2vec") -> DatasetSplits:
    """Load a ``.ts`` classification problem (train and test) with aeon's reader.

    Args:
        problem: the problem (see :func:`find_ts_classification_problems`).
        normalize: ``"ts2vec"`` (the TS2Vec protocol, see the module docstring) or ``"none"``.

    Returns:
        The splits: float32 inputs ``[N, C, T_max]`` (NaN-padded when lengths differ),
        labels in ``0..K-1``, ``modality="series"`` and the class names.

    Raises:
        ValueError: for an unknown ``normalize`` or a file aeon cannot read.
        FileNotFoundError: when a file is missing.
    """
    what = problem.registered_name
    _check_normalize(normalize, what)
    for path in (problem.train_path, problem.test_path):
        if not path.is_file():
            raise FileNotFoundError(f"{what}: file not found: {path}")
    try:
        train_series, train_labels = _read_ts_split(problem.train_path)
        test_series, test_labels = _read_ts_split(problem.test_path)
    except (OSError, ValueError) as error:  # aeon: IOError for a bad layout, ValueError for a bad number
        raise ValueError(f"{what}: aeon cannot read the .ts files in {problem.train_path.parent}: {error}") from error
    length = max(values.shape[1] for values in [*train_series, *test_series])
    train, test = pad_series(train_series, length), pad_series(test_series, length)
    if train.shape[1] != test.shape[1]:
        raise ValueError(f"{what}: train has {train.shape[1]} channels but test has {test.shape[1]}")
    if normalize == "ts2vec":
        if problem.univariate:
            # A twin holds its source set's series, so it is normalised as that set is.
            if problem.normalisation_name in TS2VEC_UNNORMALIZED_UCR or problem.normalisation_name in BUNDLED_UNNORMALIZED:
                train, test = standardize_series(train, test, per_channel=False, source=what)
        else:
            train, test = standardize_series(train, test, per_channel=True, source=what)

    train_indices, test_indices, class_names = encode_labels(train_labels, test_labels)
    # aeon lower-cases labels while reading; give back the spelling the header declares.
    spelling = {value.lower(): value for value in problem.class_values}
    class_names = [spelling.get(name, name) for name in class_names]
    return DatasetSplits(
        train=ArrayDataset(_to_tensor(train), torch.from_numpy(train_indices)),
        test=ArrayDataset(_to_tensor(test), torch.from_numpy(test_indices)),
        num_classes=len(class_names),
        input_shape=(int(train.shape[1]), int(length)),
        modality="series",
        class_names=class_names,
    )


def _register_problem(problem: TsProblem) -> None:
    def load(*, data_dir: str | Path | None = None, normalize: str = "ts2vec") -> DatasetSplits:
        """A UCR/UEA classification set bundled with aeon (``data_dir`` is ignored)."""
        return load_ts_problem(problem, normalize=normalize)

    load.__qualname__ = f"load_ts_problem[{problem.name}]"
    register_dataset(problem.registered_name, description=problem.description())(load)


def _register_aeon_problems() -> None:
    folder = aeon_data_dir()
    if folder is None:
        return  # aeon not installed: the user's own series still load
    for problem in find_ts_classification_problems(folder):
        _register_problem(problem)


_register_aeon_problems()


# --------------------------------------------------------------------------------------
# A user's own series
# --------------------------------------------------------------------------------------


def _resolve(value: str | Path, data_dir: str | Path | None, extensions: Sequence[str], role: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_absolute() and data_dir is not None:
        path = Path(data_dir).expanduser() / path
    if path.suffix.lower() not in extensions:
        raise ValueError(f"series: {role} {path}: expected a file ending in {', '.join(extensions)}, got {path.suffix or 'no ending'!r}")
    if not path.is_file():
        raise FileNotFoundError(f"series: {role} file not found: {path}")
    return path


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as error:
        # np.save writes ragged lists as pickled object arrays, which we refuse to unpickle.
        raise ValueError(
            f"series: {path}: expected a rectangular [N, C, T] array; pad unequal lengths with NaN "
            f"(cannot read it without pickle: {error})"
        ) from error
    except (OSError, EOFError) as error:
        raise ValueError(f"series: cannot read {path} (corrupt or not a .npy file): {error}") from error


def _series_from_npy(path: Path) -> np.ndarray:
    array = _read_npy(path)
    if array.dtype.kind not in "fiu":
        raise ValueError(
            f"series: {path}: expected a rectangular [N, C, T] array of numbers; pad unequal lengths with NaN "
            f"(got dtype {array.dtype})"
        )
    if array.ndim == 2:
        array = array[:, None, :]  # [N, T]: one channel
    if array.ndim != 3:
        raise ValueError(f"series: {path}: expected an array [N, C, T] or [N, T] (univariate), got shape {array.shape}")
    return array.astype(np.float64)


def _parse_cell(cell: str, path: Path, line: int, column: int) -> float:
    text = cell.strip()
    if not text:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise ValueError(
            f"series: {path}, line {line}, column {column}: cannot read {cell!r} as a number "
            "(expected numbers, NaN or empty cells, and labels only in a column headed 'label')"
        ) from None


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return not cell.strip()
    return True


def _series_from_csv(path: Path) -> tuple[np.ndarray, list[str] | None]:
    with path.open(newline="", encoding="utf-8") as file:
        rows = [(number, row) for number, row in enumerate(csv.reader(file), start=1) if row]
    label_column = None
    if rows and not all(_is_number(cell) for cell in rows[0][1]):
        _, names = rows.pop(0)
        names = [name.strip().lower() for name in names]
        if names.count("label") > 1:
            raise ValueError(f"series: {path}: expected at most one column headed 'label', got {names.count('label')}")
        label_column = names.index("label") if "label" in names else None
    if not rows:
        raise ValueError(f"series: {path}: expected at least one series (one per row), got none")
    values: list[list[float]] = []
    labels: list[str] | None = [] if label_column is not None else None
    for number, row in rows:
        cells = list(row)
        if label_column is not None:
            if label_column >= len(cells) or not cells[label_column].strip():
                raise ValueError(f"series: {path}, line {number}: expected a value in the 'label' column, got none")
            labels.append(cells.pop(label_column).strip())  # type: ignore[union-attr]
        values.append([
            _parse_cell(cell, path, number, column + 1 + (label_column is not None and column >= label_column))
            for column, cell in enumerate(cells)
        ])  # fmt: skip
    length = max(len(row) for row in values)
    if length == 0:
        raise ValueError(f"series: {path}: expected at least one value per series, got rows with only labels")
    array = np.full((len(values), 1, length), np.nan, dtype=np.float64)
    for row, numbers in enumerate(values):
        array[row, 0, : len(numbers)] = numbers
    return array, labels


def read_series(path: str | Path) -> tuple[np.ndarray, list[str] | None]:
    """Read a user's series file into float64 ``[N, C, T]`` (and labels from a CSV ``label`` column).

    Formats:

    - ``.npy``: a numeric array ``[N, C, T]``, or ``[N, T]`` for univariate series; NaN
      marks padding or missing values. Read without pickle, so a ragged (object) array
      is refused: pad unequal lengths with NaN first.
    - ``.csv``: one univariate series per row, values separated by commas; an empty cell
      or ``NaN`` is a missing value, and shorter rows are right-padded with NaN. The first
      row is a header when any of its cells is not a number; then a column headed
      ``label`` (any case, anywhere) holds each series' class and other column names are
      ignored. Blank lines are skipped.

    Args:
        path: the ``.npy`` or ``.csv`` file.

    Returns:
        ``(series, labels)``: labels are the CSV ``label`` column as strings, else ``None``.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: for another ending, a ragged or non-numeric array, a wrong number of
            dimensions, no series, inf values, or a series that is all NaN.
    """
    path = _resolve(path, None, SERIES_EXTENSIONS, "series")
    if path.suffix.lower() == ".npy":
        array, labels = _series_from_npy(path), None
    else:
        array, labels = _series_from_csv(path)
    if array.shape[0] == 0 or array.shape[2] == 0:
        raise ValueError(f"series: {path}: expected at least one series with at least one time step, got shape {array.shape}")
    if np.isinf(array).any():
        raise ValueError(f"series: {path}: expected finite values or NaN, got {int(np.isinf(array).sum())} inf entries")
    _check_no_empty_series(array, str(path))
    return array, labels


def read_labels(path: str | Path) -> list[str]:
    """Read class labels, one per series, as strings.

    ``.npy``: a 1-D array of integers (integral floats are accepted) or strings.
    ``.csv`` / ``.txt``: one label per line; a first line reading ``label`` is a header
    and is skipped; blank lines at the end are ignored. Integer labels are written
    canonically (``"07"`` becomes ``"7"``) so that the same class reads the same from
    every format.

    Args:
        path: the labels file.

    Returns:
        The labels as strings.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: for another ending, a non-1-D array, labels that are neither integers
            nor strings (e.g. ``0.5``, NaN, booleans), or an empty label.
    """
    path = _resolve(path, None, LABEL_EXTENSIONS, "labels")
    if path.suffix.lower() == ".npy":
        raw = _read_npy(path)
        if raw.ndim != 1:
            raise ValueError(f"series: {path}: expected labels of shape [N], got {raw.shape}")
        if raw.dtype.kind in "iu":
            return [str(int(value)) for value in raw]
        if raw.dtype.kind == "f":
            if not np.isfinite(raw).all() or not np.array_equal(raw, np.round(raw)):
                raise ValueError(f"series: {path}: expected integer or string labels, got non-integer floats")
            return [str(int(value)) for value in raw]
        if raw.dtype.kind in "US":
            labels = [value.decode() if isinstance(value, bytes) else str(value) for value in raw.tolist()]
        else:
            raise ValueError(f"series: {path}: expected integer or string labels, got dtype {raw.dtype}")
    else:
        lines = path.read_text(encoding="utf-8").splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        if lines and lines[0].strip().lower() == "label":
            lines = lines[1:]
        labels = [line.strip() for line in lines]
    for number, label in enumerate(labels):
        if not label:
            raise ValueError(f"series: {path}: label {number} (0-based) is empty; expected one label per series")
    return [_canonical(label) for label in labels]


def _canonical(label: str) -> str:
    try:
        return str(int(label))
    except ValueError:
        return label


def _all_integers(labels: Sequence[str]) -> bool:
    try:
        for label in labels:
            int(label)
    except ValueError:
        return False
    return True


@register_dataset(
    "series",
    description="your own time series: train=PATH (.npy [N,C,T]/[N,T] or .csv one series per row, NaN-padded), "
    "optional test=, train_labels=, test_labels=",
)
def load_series(
    *,
    data_dir: str | Path | None = None,
    train: str | Path | None = None,
    test: str | Path | None = None,
    train_labels: str | Path | None = None,
    test_labels: str | Path | None = None,
    normalize: str = "ts2vec",
    test_fraction: float = 0.2,
    seed: int = 0,
) -> DatasetSplits:
    """Your own series from ``.npy`` or ``.csv`` files, with optional labels.

    Series files (see :func:`read_series` for the exact formats): ``.npy`` arrays
    ``[N, C, T]`` or ``[N, T]`` (univariate), or ``.csv`` with one univariate series per
    row and an optional ``label`` column under a header row. NaN (or an empty CSV cell)
    marks padding or a missing value; series of unequal length are right-padded with NaN
    to the longest length over train and test.

    Labels come from the CSV ``label`` column or a labels file (see :func:`read_labels`):
    ``.npy`` ``[N]`` integers or strings, or ``.csv``/``.txt`` one label per line. They
    are mapped to ``0..K-1`` by the sorted union of train and test labels (numerically
    when all are integers); a test label never seen in training is kept as its own class.
    Without labels both splits are unlabelled (``num_classes=0``).

    Without ``test``, a seeded ``test_fraction`` of ``train`` (class-stratified when
    labelled) is held out for testing.

    Args:
        data_dir: a folder that relative paths are resolved against.
        train: the training series file (required).
        test: the test series file; ``None`` splits ``train``.
        train_labels: the training labels file (instead of a CSV ``label`` column).
        test_labels: the test labels file.
        normalize: ``"ts2vec"`` (per-channel standardisation fitted on the training split,
            NaN-aware) or ``"none"``.
        test_fraction: the fraction of ``train`` held out when ``test`` is not given.
        seed: the seed of that split.

    Returns:
        The splits: float32 inputs ``[N, C, T]``, ``modality="series"``.

    Raises:
        FileNotFoundError: when a file does not exist (the message names it).
        ValueError: for a missing ``train``, an unknown ``normalize``, a ragged or
            non-numeric array, a wrong number of dimensions, a series that is all NaN,
            labels given twice or for one split only, a label count that differs from the
            series count, labels of the wrong type, or train and test with different
            numbers of channels.
    """
    if train is None:
        raise ValueError("series: train is required (pass --set data.train=PATH, a .npy or .csv file)")
    _check_normalize(normalize, "series")
    train_path = _resolve(train, data_dir, SERIES_EXTENSIONS, "train")
    test_path = None if test is None else _resolve(test, data_dir, SERIES_EXTENSIONS, "test")
    if test_labels is not None and test_path is None:
        raise ValueError("series: test_labels given without test; expected a test series file too (or neither)")

    def labelled_split(series_path: Path, labels_value: str | Path | None, role: str) -> tuple[np.ndarray, list[str] | None]:
        array, labels = read_series(series_path)
        if labels_value is not None:
            labels_path = _resolve(labels_value, data_dir, LABEL_EXTENSIONS, f"{role}_labels")
            if labels is not None:
                raise ValueError(
                    f"series: {series_path} has a 'label' column and {role}_labels={labels_path} was given too; expected one of them"
                )
            labels = read_labels(labels_path)
            if len(labels) != array.shape[0]:
                raise ValueError(
                    f"series: expected as many labels as series, got {len(labels)} labels in {labels_path} "
                    f"and {array.shape[0]} series in {series_path}"
                )
        return array, labels

    train_array, train_names = labelled_split(train_path, train_labels, "train")
    test_array, test_names = (None, None) if test_path is None else labelled_split(test_path, test_labels, "test")
    if test_array is not None:
        if (train_names is None) != (test_names is None):
            has, lacks = (train_path, test_path) if train_names is not None else (test_path, train_path)
            raise ValueError(f"series: {has} is labelled but {lacks} is not; expected labels for both splits or neither")
        if train_array.shape[1] != test_array.shape[1]:
            raise ValueError(
                f"series: train and test must have the same number of channels, got {train_array.shape[1]} "
                f"in {train_path} and {test_array.shape[1]} in {test_path}"
            )
        if train_names is not None and test_names is not None and _all_integers(train_names) != _all_integers(test_names):
            integer, other = ("train", "test") if _all_integers(train_names) else ("test", "train")
            example = next(name for name in (test_names if other == "test" else train_names) if not _all_integers([name]))
            raise ValueError(
                f"series: {integer} labels are integers but {other} labels are not (e.g. {example!r}); "
                "expected the same kind of labels in both splits"
            )

    class_names: list[str] | None = None
    train_y = test_y = None
    if train_names is not None:
        train_y, test_y, class_names = encode_labels(train_names, test_names)
    if test_array is None:
        num_rows = train_array.shape[0]
        test_size = test_size_from_fraction(num_rows, test_fraction, what="series")
        train_rows, test_rows = split_indices(num_rows, train_y, test_size=test_size, seed=seed)
        test_array, train_array = train_array[test_rows], train_array[train_rows]
        if train_y is not None:
            test_y, train_y = train_y[test_rows], train_y[train_rows]

    length = max(train_array.shape[2], test_array.shape[2])
    train_array, test_array = _pad_to(train_array, length), _pad_to(test_array, length)
    if normalize == "ts2vec":
        train_array, test_array = standardize_series(train_array, test_array, per_channel=True, source=str(train_path))
    to_labels = (lambda y: None) if train_y is None else (lambda y: torch.from_numpy(y))
    return DatasetSplits(
        train=ArrayDataset(_to_tensor(train_array), to_labels(train_y)),
        test=ArrayDataset(_to_tensor(test_array), to_labels(test_y)),
        num_classes=0 if class_names is None else len(class_names),
        input_shape=(int(train_array.shape[1]), int(length)),
        modality="series",
        class_names=class_names,
    )
