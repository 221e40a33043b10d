"""read_corpus: BEIR corpus.jsonl and plain text, one document per line."""

from __future__ import annotations

import json

import pytest

from contrastkit.data.corpus import read_corpus


def test_jsonl_joins_title_and_text_like_beir(tmp_path):
    path = tmp_path / "corpus.jsonl"
    rows = [{"_id": "a", "title": "Title", "text": "body"}, {"_id": 7, "text": "no title"}]
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n\n")
    assert read_corpus(path) == {"a": "Title body", "7": "no title"}


def test_plain_text_ids_are_line_numbers_and_blank_lines_keep_their_number(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_text("first\n\nthird\n")
    assert read_corpus(path) == {"0": "first", "2": "third"}


def test_bad_corpora_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="one document per line"):
        read_corpus(tmp_path / "missing.jsonl")
    empty_text = tmp_path / "empty.jsonl"
    empty_text.write_text(json.dumps({"_id": "x", "text": "  "}) + "\n")
    with pytest.raises(ValueError, match="'x' has an empty text"):
        read_corpus(empty_text)
    duplicate = tmp_path / "dup.jsonl"
    duplicate.write_text(json.dumps({"_id": "x", "text": "a"}) + "\n" + json.dumps({"_id": "x", "text": "b"}) + "\n")
    with pytest.raises(ValueError, match="line 2: duplicate _id 'x'"):
        read_corpus(duplicate)
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n")
    with pytest.raises(ValueError, match="at least one document"):
        read_corpus(blank)
