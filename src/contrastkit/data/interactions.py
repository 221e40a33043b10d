"""User–item interaction data for recommendation: splits, BPR triplets and user logs.

Collaborative-filtering methods (LightGCN, SimGCL, LightGCL) learn from implicit
feedback: a set of observed ``(user, item)`` pairs. This module turns such a set into
the :class:`~contrastkit.data.registry.DatasetSplits` every run expects:

- :class:`InteractionData` — the whole dataset: ``num_users``, ``num_items``, the
  training and test pairs ``[2, T]`` (row 0 users, row 1 items) and optional names.
  It is ``splits.test``: ``len()`` is the number of users with test items (the users
  evaluation ranks for), and :meth:`InteractionData.train_mask` gives the dense mask of
  a block of users' training items that full-ranking evaluation removes.
- :class:`InteractionDataset` — ``splits.train``: one row per training pair. Its
  ``__getitems__`` returns a :class:`~contrastkit.data.batch.Batch` whose ``inputs`` is
  a ``LongTensor [B, 3]`` of ``(user, positive item, negative item)`` triplets, the BPR
  sample of LightGCN and LightGCL (He et al., 2020; Cai et al., 2023), with the negative
  drawn uniformly from torch's global RNG (rejected while it is a training positive,
  a bounded number of rounds).
- :func:`interaction_splits` — a seeded per-user hold-out (LightGCN's 80/20 protocol).
- :func:`load_interaction_file` / :func:`load_interactions` — a user's own CSV/TSV log.

Example:
    >>> pairs = torch.tensor([[0, 0, 0, 1, 1, 2], [0, 1, 2, 1, 3, 0]])
    >>> splits = interaction_splits(pairs, num_users=3, num_items=4, test_fraction=0.5, seed=0)
    >>> splits.train.__getitems__([0, 1]).inputs.shape
    torch.Size([2, 3])
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from contrastkit.data.batch import Batch
from contrastkit.data.registry import DatasetSplits

#: Rounds of negative re-drawing before a batch keeps a negative that is a training positive.
NEGATIVE_RETRIES = 10

#: Lower-cased first-row fields that mark a header line of an interaction file.
_HEADER_WORDS = frozenset(
    {
        "user", "users", "user_id", "userid", "uid", "u", "customer", "customer_id",
        "item", "items", "item_id", "itemid", "iid", "i", "product", "product_id", "movie", "movie_id", "movieid",
    }
)  # fmt: skip


def _as_pairs(pairs: Any, name: str = "pairs") -> torch.Tensor:
    """``pairs`` as a ``LongTensor [2, T]`` (accepts a tensor or array ``[2, T]``)."""
    if isinstance(pairs, np.ndarray):
        pairs = torch.from_numpy(pairs)
    if not isinstance(pairs, torch.Tensor):
        raise ValueError(f"{name}: expected a tensor [2, T] of (user, item) ids, got {type(pairs).__name__}")
    if pairs.dim() != 2 or pairs.shape[0] != 2:
        raise ValueError(f"{name}: expected shape [2, T] (row 0 users, row 1 items), got {tuple(pairs.shape)}")
    if pairs.is_floating_point() or pairs.is_complex() or pairs.dtype == torch.bool:
        raise ValueError(f"{name}: expected integer ids, got dtype {pairs.dtype}")
    return pairs.long().cpu()


def _check_ranges(pairs: torch.Tensor, num_users: int, num_items: int, name: str) -> None:
    if num_users < 1 or num_items < 1:
        raise ValueError(f"{name}: expected num_users >= 1 and num_items >= 1, got {num_users} and {num_items}")
    if pairs.numel() == 0:
        return
    if int(pairs.min()) < 0:
        raise ValueError(f"{name}: expected non-negative ids, got minimum {int(pairs.min())}")
    if int(pairs[0].max()) >= num_users:
        raise ValueError(f"{name}: expected user ids < num_users={num_users}, got {int(pairs[0].max())}")
    if int(pairs[1].max()) >= num_items:
        raise ValueError(f"{name}: expected item ids < num_items={num_items}, got {int(pairs[1].max())}")


def unique_pairs(pairs: torch.Tensor, num_items: int) -> torch.Tensor:
    """The distinct pairs of ``pairs [2, T]``, sorted by (user, item)."""
    keys = torch.unique(pairs[0] * num_items + pairs[1])  # sorted
    return torch.stack([keys // num_items, keys % num_items])


def pairs_to_csr(pairs: torch.Tensor, num_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Compressed rows of a pair list: ``(row_pointer [num_rows + 1], columns [T])``.

    Row ``r``'s columns are ``columns[row_pointer[r]:row_pointer[r + 1]]`` (in the order of
    a stable sort by row). Tensors stay on ``pairs``' device.
    """
    order = torch.argsort(pairs[0], stable=True)
    counts = torch.bincount(pairs[0], minlength=num_rows)
    row_pointer = torch.zeros(num_rows + 1, dtype=torch.long, device=pairs.device)
    row_pointer[1:] = torch.cumsum(counts, 0)
    return row_pointer, pairs[1][order]


def csr_rows_mask(
    row_pointer: torch.Tensor, columns: torch.Tensor, rows: torch.Tensor, num_columns: int
) -> torch.Tensor:
    """The dense boolean ``[len(rows), num_columns]`` mask of the given CSR rows, without a Python loop."""
    starts = row_pointer[rows]
    counts = row_pointer[rows + 1] - starts
    mask = torch.zeros(rows.shape[0], num_columns, dtype=torch.bool, device=columns.device)
    total = int(counts.sum())
    if total == 0:
        return mask
    which = torch.repeat_interleave(torch.arange(rows.shape[0], device=rows.device), counts)
    first = torch.repeat_interleave(starts - (torch.cumsum(counts, 0) - counts), counts)
    mask[which, columns[first + torch.arange(total, device=rows.device)]] = True
    return mask


@dataclass(eq=False)
class InteractionData:
    """A user–item interaction dataset split into training and test pairs.

    Attributes:
        num_users: the number of users ``U`` (ids ``0..U-1``).
        num_items: the number of items ``I`` (ids ``0..I-1``).
        train_pairs: ``LongTensor [2, T]`` distinct training pairs (row 0 users, row 1 items).
        test_pairs: ``LongTensor [2, S]`` distinct test pairs, disjoint from the training pairs.
        user_names: optional names of the users, indexed by id.
        item_names: optional names of the items, indexed by id.
    """

    num_users: int
    num_items: int
    train_pairs: torch.Tensor
    test_pairs: torch.Tensor
    user_names: list[str] | None = None
    item_names: list[str] | None = None
    _csr: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.train_pairs = _as_pairs(self.train_pairs, "train_pairs")
        self.test_pairs = _as_pairs(self.test_pairs, "test_pairs")
        _check_ranges(self.train_pairs, self.num_users, self.num_items, "train_pairs")
        _check_ranges(self.test_pairs, self.num_users, self.num_items, "test_pairs")
        for names, size, what in ((self.user_names, self.num_users, "user"), (self.item_names, self.num_items, "item")):
            if names is not None and len(names) != size:
                raise ValueError(f"{what}_names: expected {size} names (one per {what}), got {len(names)}")

    @property
    def test_users(self) -> torch.Tensor:
        """The users with at least one test item, sorted: ``LongTensor [N]``."""
        return torch.unique(self.test_pairs[0])

    def __len__(self) -> int:
        """The number of users evaluation ranks for (users with test items)."""
        return int(self.test_users.shape[0])

    def train_csr(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training pairs as compressed rows ``(row_pointer [U + 1], items [T])`` (cached)."""
        if self._csr is None:
            self._csr = pairs_to_csr(self.train_pairs, self.num_users)
        return self._csr

    def train_matrix(self) -> torch.Tensor:
        """The ``[U, I]`` training interaction matrix as a coalesced sparse COO tensor of ones."""
        values = torch.ones(self.train_pairs.shape[1])
        size = (self.num_users, self.num_items)
        return torch.sparse_coo_tensor(self.train_pairs, values, size, check_invariants=True).coalesce()

    def train_mask(self, users: torch.Tensor) -> torch.Tensor:
        """Dense boolean ``[len(users), I]``: ``True`` where the user has the item in training."""
        row_pointer, items = self.train_csr()
        return csr_rows_mask(row_pointer, items, users.cpu().long(), self.num_items).to(users.device)

    def subset_users(self, size: int | None, seed: int = 0) -> "InteractionData":
        """The same data with the test pairs of at most ``size`` seeded-random test users (``None``: all)."""
        users = self.test_users
        if size is None or size >= users.shape[0]:
            return self
        if size < 1:
            raise ValueError(f"subset_users: expected a size >= 1 or None, got {size}")
        keep = users[torch.randperm(users.shape[0], generator=torch.Generator().manual_seed(seed))[:size]]
        selected = torch.isin(self.test_pairs[0], keep)
        return InteractionData(self.num_users, self.num_items, self.train_pairs, self.test_pairs[:, selected],
                               self.user_names, self.item_names)  # fmt: skip


class InteractionDataset(Dataset):
    """Training rows of BPR triplets ``(user, positive item, negative item)``, one per training pair.

    Row ``i`` is training pair ``i``; the negative item is drawn when the row is fetched,
    uniformly over all items from torch's global RNG (so the trainer's seeding and RNG
    checkpointing make runs and resumes exact). A negative that is a training positive of
    its user is re-drawn, at most :data:`NEGATIVE_RETRIES` rounds (LightGCN and LightGCL
    reject such negatives); a user who interacted with nearly every item may keep one.

    Args:
        data: the :class:`InteractionData` whose training pairs are the rows.
    """

    def __init__(self, data: InteractionData) -> None:
        if data.train_pairs.shape[1] == 0:
            raise ValueError("InteractionDataset: expected at least one training pair, got none")
        self.data = data
        self.num_users, self.num_items = data.num_users, data.num_items
        self.pairs = data.train_pairs
        # Sorted (user * I + item) keys: negatives are tested against them with one searchsorted.
        self._keys = torch.sort(self.pairs[0] * self.num_items + self.pairs[1]).values

    def __len__(self) -> int:
        return int(self.pairs.shape[1])

    def is_positive(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Boolean ``[B]``: whether each ``(user, item)`` is a training pair."""
        keys = users * self.num_items + items
        position = torch.searchsorted(self._keys, keys).clamp(max=self._keys.shape[0] - 1)
        return self._keys[position] == keys

    def sample_negatives(self, users: torch.Tensor) -> torch.Tensor:
        """Uniform negative items ``[B]`` for ``users [B]``, re-drawn while they are training positives."""
        negatives = torch.randint(self.num_items, users.shape)
        for _ in range(NEGATIVE_RETRIES):
            clash = self.is_positive(users, negatives)
            count = int(clash.sum())
            if count == 0:
                break
            negatives[clash] = torch.randint(self.num_items, (count,))
        return negatives

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        index = torch.as_tensor(list(indices), dtype=torch.long)
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= len(self)):
            raise IndexError(f"InteractionDataset: indices must lie in [0, {len(self)}), got {index.tolist()[:5]}...")
        users, positives = self.pairs[0, index], self.pairs[1, index]
        triplets = torch.stack([users, positives, self.sample_negatives(users)], dim=1)
        return Batch(inputs=triplets, index=index)

    def __getitem__(self, index: int) -> Batch:
        batch = self.__getitems__([int(index)])
        return Batch(inputs=batch.inputs[0], index=batch.index[0])


def split_interactions(
    pairs: torch.Tensor, num_users: int, num_items: int, *, test_fraction: float = 0.2, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded per-user hold-out of distinct pairs: ``(train_pairs, test_pairs)``.

    Duplicates are removed first. A user with ``n >= 2`` interactions puts
    ``clip(round(test_fraction * n), 1, n - 1)`` of them, drawn at random, in the test
    split (so every such user keeps at least one training item and is evaluated); a user
    with a single interaction keeps it in training. ``test_fraction=0`` puts nothing in test.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction: expected a value in [0, 1), got {test_fraction}")
    distinct = unique_pairs(pairs, num_items)  # sorted by user
    users = distinct[0].numpy()
    counts = np.bincount(users, minlength=num_users)
    held_out = np.zeros_like(counts)
    if test_fraction > 0:
        several = counts >= 2
        rounded = np.floor(test_fraction * counts[several] + 0.5).astype(np.int64)
        held_out[several] = np.clip(rounded, 1, counts[several] - 1)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(users.shape[0]), users))  # by user, random inside each user
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(users.shape[0], dtype=np.int64)
    rank[order] = np.arange(users.shape[0]) - starts[users[order]]
    is_test = torch.from_numpy(rank < held_out[users])
    return distinct[:, ~is_test], distinct[:, is_test]


def interaction_splits(
    pairs: Any,
    num_users: int,
    num_items: int,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    name: str = "",
    description: str = "",
    user_names: list[str] | None = None,
    item_names: list[str] | None = None,
) -> DatasetSplits:
    """Split interaction pairs per user and wrap them as :class:`DatasetSplits` (``modality="interactions"``).

    Args:
        pairs: ``[2, T]`` integer ``(user, item)`` ids (tensor or array); duplicates are removed.
        num_users: the number of users ``U``.
        num_items: the number of items ``I``.
        test_fraction: the share of each user's items held out for testing (see
            :func:`split_interactions`; default 0.2, LightGCN's 80/20).
        seed: seeds the hold-out.
        name: the dataset's name.
        description: a one-line description.
        user_names: optional ``U`` user names.
        item_names: optional ``I`` item names.

    Returns:
        ``DatasetSplits(train=InteractionDataset, test=InteractionData, num_classes=0,
        input_shape=(), modality="interactions")``.

    Raises:
        ValueError: for malformed pairs, ids out of range, no pairs, or a bad ``test_fraction``.
    """
    pairs = _as_pairs(pairs)
    _check_ranges(pairs, num_users, num_items, "pairs")
    if pairs.shape[1] == 0:
        raise ValueError("interaction_splits: expected at least one (user, item) pair, got none")
    train_pairs, test_pairs = split_interactions(pairs, num_users, num_items, test_fraction=test_fraction, seed=seed)
    data = InteractionData(num_users, num_items, train_pairs, test_pairs, user_names, item_names)
    return DatasetSplits(
        train=InteractionDataset(data),  # type: ignore[arg-type]
        test=data,  # type: ignore[arg-type]
        num_classes=0,
        input_shape=(),
        name=name,
        description=description,
        modality="interactions",
    )


@dataclass(eq=False)
class InteractionLog:
    """Interactions read from a file, with names mapped to ids.

    Attributes:
        pairs: ``LongTensor [2, T]`` ``(user id, item id)`` in file order (duplicates kept).
        user_names: the user names, indexed by id.
        item_names: the item names, indexed by id.
    """

    pairs: torch.Tensor
    user_names: list[str]
    item_names: list[str]

    @property
    def num_users(self) -> int:
        return len(self.user_names)

    @property
    def num_items(self) -> int:
        return len(self.item_names)


def _sorted_names(names: set[str]) -> list[str]:
    """Numeric order when every name is an integer (``"2" < "10"``), string order otherwise."""
    try:
        return sorted(names, key=int)
    except ValueError:
        return sorted(names)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _guess_delimiter(path: Path, line: str) -> str | None:
    if path.suffix.lower() == ".tsv" or "\t" in line:
        return "\t"
    if path.suffix.lower() == ".csv" or "," in line:
        return ","
    return None  # whitespace-separated


def load_interaction_file(
    path: str | Path, *, delimiter: str | None = None, header: bool | None = None
) -> InteractionLog:
    """Read a user's interaction log: one ``user, item[, ...]`` line per interaction.

    The first two columns are the user and the item (further columns such as a rating
    or a timestamp are ignored); blank lines and lines starting with ``#`` are skipped.
    User and item names are mapped to ids ``0..n-1`` in sorted order (numeric order when
    every name is an integer).

    Args:
        path: a CSV, TSV or whitespace-separated text file.
        delimiter: the column separator; ``None`` (default) guesses it: tab for ``.tsv``
            files or lines with tabs, comma for ``.csv`` files or lines with commas,
            whitespace otherwise.
        header: whether the first line is a header; ``None`` (default) guesses: yes when its
            first two fields are column words such as ``user``/``user_id`` and
            ``item``/``item_id``, or when they are not numbers while every later line's are.

    Returns:
        The :class:`InteractionLog`.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: for a line with fewer than two fields or an empty field (the message
            names ``file:line``), or a file without interactions.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"interaction file not found: {path}")
    rows: list[tuple[int, str, str]] = []
    first_line: str | None = None
    with path.open(encoding="utf-8", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            if first_line is None:
                first_line = text
                delimiter = delimiter if delimiter is not None else _guess_delimiter(path, line)
            if delimiter is None:
                fields = text.split()
            else:
                fields = next(csv.reader([line.rstrip("\r\n")], delimiter=delimiter))
            fields = [value.strip() for value in fields]
            if len(fields) < 2 or not fields[0] or not fields[1]:
                raise ValueError(
                    f"{path}:{number}: expected at least 2 non-empty columns (user, item), got {text[:80]!r}"
                )
            rows.append((number, fields[0], fields[1]))
    if rows and _is_header(rows, header):
        rows = rows[1:]
    if not rows:
        raise ValueError(f"{path}: expected at least one (user, item) line, got an empty interaction log")
    user_names = _sorted_names({user for _, user, _ in rows})
    item_names = _sorted_names({item for _, _, item in rows})
    user_id = {name: index for index, name in enumerate(user_names)}
    item_id = {name: index for index, name in enumerate(item_names)}
    pairs = torch.tensor([[user_id[u] for _, u, _ in rows], [item_id[i] for _, _, i in rows]], dtype=torch.long)
    return InteractionLog(pairs, user_names, item_names)


def _is_header(rows: list[tuple[int, str, str]], header: bool | None) -> bool:
    if header is not None:
        return header
    _, user, item = rows[0]
    if user.lower() in _HEADER_WORDS and item.lower() in _HEADER_WORDS:
        return True
    rest = rows[1:]
    if not rest:
        return False
    for column, value in ((1, user), (2, item)):
        if not _is_number(value) and all(_is_number(row[column]) for row in rest):
            return True
    return False


def load_interactions(
    path: str | Path,
    *,
    data_dir: str | Path | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    delimiter: str | None = None,
    header: bool | None = None,
) -> DatasetSplits:
    """A user's interaction log (CSV/TSV of ``user, item``) split per user for training and evaluation.

    A loader in the form the dataset registry calls (e.g. as the ``interactions:PATH``
    prefix): :func:`load_interaction_file` then :func:`interaction_splits`.

    Args:
        path: the log file; relative paths are resolved against ``data_dir`` when given.
        data_dir: an optional folder for relative paths.
        test_fraction: each user's share of held-out items (default 0.2).
        seed: seeds the hold-out.
        delimiter: see :func:`load_interaction_file`.
        header: see :func:`load_interaction_file`.

    Returns:
        The :class:`DatasetSplits` with ``modality="interactions"``.
    """
    file = Path(path)
    if not file.is_absolute() and data_dir is not None:
        file = Path(data_dir) / file
    log = load_interaction_file(file, delimiter=delimiter, header=header)
    return interaction_splits(
        log.pairs, log.num_users, log.num_items, test_fraction=test_fraction, seed=seed, name=f"interactions:{path}",
        description=f"interaction log {file.name}: {log.num_users} users, {log.num_items} items",
        user_names=log.user_names, item_names=log.item_names,
    )  # fmt: skip
