"""Read a document collection to embed or search: BEIR ``corpus.jsonl`` or plain text."""

from __future__ import annotations

from pathlib import Path

from contrastkit.data.text_files import read_beir_texts


def read_corpus(path: str | Path) -> dict[str, str]:
    """``{doc id: text}`` from a corpus file.

    Accepted forms:

    * ``.jsonl``: BEIR's ``corpus.jsonl``, one object per line with ``_id``, ``text`` and an
      optional ``title`` (prepended with a space, as BEIR's dense evaluation does);
    * any other extension: plain text, one document per line, ids ``"0"``, ``"1"``, ...
      (blank lines are skipped but keep their number).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a malformed line (with its number), duplicate ids, an empty document,
            or no documents.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"corpus {path}: expected a .jsonl file (BEIR corpus format) or a text file, "
                                "one document per line")
    if path.suffix == ".jsonl":
        corpus = read_beir_texts(path, join_title=True)
        empty = [doc_id for doc_id, text in corpus.items() if not text]
        if empty:
            raise ValueError(f"corpus {path}: document {empty[0]!r} has an empty text")
        return corpus
    with path.open(encoding="utf-8") as handle:
        corpus = {str(number): line.rstrip("\n") for number, line in enumerate(handle) if line.strip()}
    if not corpus:
        raise ValueError(f"corpus {path}: expected at least one document, found none")
    return corpus
