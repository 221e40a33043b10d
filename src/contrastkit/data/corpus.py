"""Read a document collection to embed or search: BEIR ``corpus.jsonl``, JSONL with ids, or plain text."""

from __future__ import annotations

import json
from pathlib import Path


def read_corpus(path: str | Path) -> dict[str, str]:
    """``{doc id: text}`` from a corpus file.

    Accepted forms:

    * ``.jsonl``: one object per line with ``_id`` or ``id`` and ``text`` (BEIR's
      ``corpus.jsonl``; a non-empty ``title`` is prepended with a space, as BEIR's
      dense evaluation does);
    * any other extension: plain text, one document per line, ids ``"0"``, ``"1"``, ...
      (blank lines are skipped but keep their number).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a malformed line (with its number), duplicate ids, or no documents.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"corpus {path}: expected a .jsonl file (BEIR corpus format) or a text file, "
                                "one document per line")
    corpus: dict[str, str] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            if path.suffix != ".jsonl":
                corpus[str(number - 1)] = line.rstrip("\n")
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: invalid JSON ({error.msg})") from error
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            doc_id = row.get("_id", row.get("id"))
            text = row.get("text")
            if doc_id is None or not isinstance(text, str):
                raise ValueError(f"{path}:{number}: expected keys '_id' (or 'id') and 'text' (a string), "
                                 f"got keys {sorted(row)}")
            title = row.get("title") or ""
            text = f"{title} {text}" if isinstance(title, str) and title.strip() else text
            if not text.strip():
                raise ValueError(f"{path}:{number}: document {doc_id!r} has an empty text")
            if str(doc_id) in corpus:
                raise ValueError(f"{path}:{number}: duplicate document id {doc_id!r}")
            corpus[str(doc_id)] = text
    if not corpus:
        raise ValueError(f"corpus {path}: expected at least one document, found none")
    return corpus
