"""Tuples of several modalities per row (Symile's data): one table per modality, rows index into them.

A :class:`TupleDataset` row is a tuple ``(x_1, ..., x_M)``, one value per *field* (``"image"``,
``"audio"``, ``"text"``, ...). Values are stored once in a per-field *table* (a tensor
``[V, ...]`` or a list of ``V`` strings) and each row holds an index into every table, so
that 8,000 tuples over 50 glyphs and 360 speech clips cost about 400 table rows, not 24,000.
The index is also the *identity* of a value: two rows with the same image index show the
same image, which is what zero-shot evaluation counts as a correct prediction
(:mod:`contrastkit.eval.protocols.tuples`).

A batch is a :class:`~contrastkit.data.batch.Batch` whose ``inputs`` is a dict with one entry
per field (a tensor ``[B, ...]``, or a list of ``B`` strings for text) and, when the data
set has missing values, ``"missing"``: ``{field: bool [B]}`` (``True`` where the value is
missing). A missing value is shown as the field's *placeholder* (the last table row: the
mean image or waveform, ``"[MISSING]"`` for text), the official Symile code's choice; the
mask lets an encoder learn a missingness embedding on top
(:class:`~contrastkit.nn.tuple_towers.TupleTowers`). ``labels`` are the rows' class ids and
``index`` the row numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from contrastkit.data.batch import Batch

__all__ = ["FIELD_KINDS", "MISSING_KEY", "MISSING_TEXT", "TupleDataset"]

#: The kinds of field a tuple holds (they choose the default tower).
FIELD_KINDS = ("image", "audio", "text", "vector")
#: The batch key of the missingness masks (not a field name).
MISSING_KEY = "missing"
#: The placeholder of a missing text (the official Symile-M3 code adds such a token).
MISSING_TEXT = "[MISSING]"


def _placeholder(table: torch.Tensor | list[str]) -> torch.Tensor | str:
    return MISSING_TEXT if isinstance(table, list) else table.float().mean(0).to(table.dtype)


class TupleDataset(Dataset):
    """Rows of ``M`` paired values, one per field, stored as indices into per-field tables.

    Args:
        tables: ``{field: values}``: a tensor ``[V, ...]`` or a list of ``V`` strings per field,
            in field order (the order methods and towers use).
        rows: ``{field: LongTensor [N]}``: each row's index into the field's table.
        kinds: ``{field: kind}``, one of :data:`FIELD_KINDS` (default: ``"text"`` for string
            tables, ``"image"`` for 4-d tensors [V, C, H, W], ``"audio"`` for 3-d, else ``"vector"``).
        labels: optional class ids ``[N]`` (e.g. the image's class).
        missing: optional ``{field: bool [N]}``: values missing in that row; they are replaced
            by the field's placeholder (appended as the last table row).
        class_names: optional name per class id.

    Raises:
        ValueError: for a field without rows (or rows without a table), indices out of range,
            lengths that disagree, an unknown kind, or fewer than 2 fields.
    """

    def __init__(self, tables: Mapping[str, torch.Tensor | Sequence[str]], rows: Mapping[str, torch.Tensor], *,
                 kinds: Mapping[str, str] | None = None, labels: torch.Tensor | None = None,
                 missing: Mapping[str, torch.Tensor] | None = None, class_names: Sequence[str] | None = None) -> None:
        fields = list(tables)
        if len(fields) < 2:
            raise ValueError(f"TupleDataset: expected at least 2 fields, got {fields}")
        if MISSING_KEY in fields:
            raise ValueError(f"TupleDataset: {MISSING_KEY!r} is reserved for the missingness masks, not a field name")
        if set(rows) != set(fields):
            raise ValueError(f"TupleDataset: expected rows for exactly the fields {fields}, got {sorted(rows)}")
        self.fields = fields
        self.tables: dict[str, torch.Tensor | list[str]] = {}
        self.rows: dict[str, torch.Tensor] = {}
        count = None
        for field in fields:
            table = tables[field]
            table = list(table) if not isinstance(table, torch.Tensor) else table
            index = torch.as_tensor(rows[field], dtype=torch.long)
            if index.dim() != 1:
                raise ValueError(f"TupleDataset: rows[{field!r}]: expected a 1-d index tensor, got {tuple(index.shape)}")
            if count is None:
                count = index.shape[0]
            if index.shape[0] != count:
                raise ValueError(f"TupleDataset: rows[{field!r}] has {index.shape[0]} rows, expected {count}")
            if index.numel() and (int(index.min()) < 0 or int(index.max()) >= len(table)):
                raise ValueError(f"TupleDataset: rows[{field!r}] indexes outside its table of {len(table)} values")
            self.tables[field], self.rows[field] = table, index
        self.kinds = {field: (kinds or {}).get(field) or self._guess_kind(self.tables[field]) for field in fields}
        unknown = {field: kind for field, kind in self.kinds.items() if kind not in FIELD_KINDS}
        if unknown:
            raise ValueError(f"TupleDataset: unknown field kind(s) {unknown}; expected one of {', '.join(FIELD_KINDS)}")
        self.count = int(count or 0)
        self.labels = torch.zeros(self.count, dtype=torch.long) if labels is None else torch.as_tensor(labels).long()
        if self.labels.shape != (self.count,):
            raise ValueError(f"TupleDataset: expected labels [{self.count}], got {tuple(self.labels.shape)}")
        self.class_names = list(class_names) if class_names is not None else []
        # The placeholder is one more table row, so a missing value is an ordinary index.
        self.placeholder_index: dict[str, int] = {}
        for field in fields:
            table = self.tables[field]
            self.placeholder_index[field] = len(table)
            if isinstance(table, list):
                self.tables[field] = table + [MISSING_TEXT]
            else:
                self.tables[field] = torch.cat([table, _placeholder(table)[None]])
        self.missing: dict[str, torch.Tensor] | None = None
        if missing:
            self.missing = {}
            for field in fields:
                mask = torch.as_tensor(missing.get(field, torch.zeros(self.count)), dtype=torch.bool)
                if mask.shape != (self.count,):
                    raise ValueError(f"TupleDataset: missing[{field!r}]: expected [{self.count}], got {tuple(mask.shape)}")
                self.missing[field] = mask
            unknown_fields = sorted(set(missing) - set(fields))
            if unknown_fields:
                raise ValueError(f"TupleDataset: missing names unknown fields {unknown_fields}; fields: {fields}")

    @staticmethod
    def _guess_kind(table: torch.Tensor | list[str]) -> str:
        if isinstance(table, list):
            return "text"
        return {4: "image", 3: "audio"}.get(table.dim(), "vector")

    def __len__(self) -> int:
        return self.count

    def field_shape(self, field: str) -> tuple[int, ...]:
        """The shape of one value of a tensor field (``()`` for text)."""
        table = self.tables[field]
        return () if isinstance(table, list) else tuple(int(size) for size in table.shape[1:])

    @property
    def field_specs(self) -> dict[str, dict[str, Any]]:
        """``{field: {"kind": ..., "shape": [...]}}``: what a tower needs to know of each field."""
        return {field: {"kind": self.kinds[field], "shape": list(self.field_shape(field))} for field in self.fields}

    def values(self, field: str, index: torch.Tensor) -> torch.Tensor | list[str]:
        """The table values at ``index`` (a tensor batch, or a list of strings)."""
        table = self.tables[field]
        if isinstance(table, list):
            return [table[i] for i in index.tolist()]
        return table[index]

    def batch(self, rows: torch.Tensor, *, missing: Mapping[str, torch.Tensor] | None = None) -> Batch:
        """The batch of ``rows``; ``missing`` (``{field: bool [len(rows)]}``) overrides the stored masks."""
        rows = torch.as_tensor(rows, dtype=torch.long)
        if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= len(self)):
            raise IndexError(f"TupleDataset: indices out of range for {len(self)} rows")
        masks = None
        if missing is not None:
            masks = {field: torch.as_tensor(missing.get(field, torch.zeros(len(rows))), dtype=torch.bool)
                     for field in self.fields}
        elif self.missing is not None:
            masks = {field: self.missing[field][rows] for field in self.fields}
        inputs: dict[str, Any] = {}
        for field in self.fields:
            index = self.rows[field][rows]
            if masks is not None:
                index = torch.where(masks[field], torch.full_like(index, self.placeholder_index[field]), index)
            inputs[field] = self.values(field, index)
        if masks is not None:
            inputs[MISSING_KEY] = masks
        return Batch(inputs=inputs, labels=self.labels[rows], index=rows)

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        return self.batch(torch.as_tensor(list(indices), dtype=torch.long))

    def __getitem__(self, index: int) -> Batch:
        return self.__getitems__([int(index)])

    def __repr__(self) -> str:
        kinds = ", ".join(f"{field}:{self.kinds[field]}" for field in self.fields)
        return f"TupleDataset(n={len(self)}, fields=[{kinds}])"
