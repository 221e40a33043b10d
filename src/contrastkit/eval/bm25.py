"""BM25 baseline runs with the maintained ``bm25s`` package (Lù, 2024).

Robertson & Zaragoza's BM25, in its Lucene form (the default ``method="lucene"``, which
drops the rank-neutral ``(k1 + 1)`` factor), scores a document ``d`` for a query ``q`` as

    score(q, d) = sum_{t in q} idf(t) * tf(t, d) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl)),
    idf(t) = log(1 + (N - df(t) + 0.5) / (df(t) + 0.5)),

with ``k1=1.5`` and ``b=0.75`` (bm25s' defaults). Text is tokenised by bm25s
(lower-cased words of two or more characters, English stop words removed, no stemming
unless a ``stemmer`` is given). For code, ``split_identifiers=True`` first adds the words
of each snake_case / camelCase identifier next to it, so a query "get foo bar" matches
``getFooBar``. Documents that share no term with a query (score 0) are left out of its
ranking, as Lucene/Pyserini do.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping

try:
    import bm25s
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "contrastkit.eval.bm25 needs bm25s; install the text extra: pip install 'contrastkit[text]'"
    ) from error

Run = dict[str, dict[str, float]]

BM25_METHODS = ("lucene", "robertson", "atire", "bm25l", "bm25+")

_WORD = re.compile(r"\w+")
# Parts of one underscore-free piece: acronyms before a capitalised word (HTTPServer -> HTTP,
# Server), capitalised or lower-case words with trailing digits, trailing acronyms.
_CAMEL_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z0-9]+|[A-Z]+[0-9]*")


def _identifier_words(match: re.Match[str]) -> str:
    token = match.group(0)
    parts = [part.lower() for piece in token.split("_") for part in _CAMEL_PART.findall(piece)]
    if not parts or parts == [token]:
        return token
    return " ".join([token, *parts])


def expand_identifiers(text: str) -> str:
    """Add the words of snake_case and camelCase identifiers after each identifier.

    The original token is kept, so exact identifier matches still count.

    Example:
        >>> expand_identifiers("x = getFooBar(max_len)")
        'x = getFooBar get foo bar(max_len max len)'
    """
    return _WORD.sub(_identifier_words, text)


def _check_texts(name: str, texts: Mapping[str, str]) -> tuple[list[str], list[str]]:
    if not isinstance(texts, Mapping):
        raise ValueError(f"{name}: expected a dict {{id: text}}, got {type(texts).__name__}")
    ids, bodies = [], []
    for identifier, text in texts.items():
        if not isinstance(text, str):
            raise ValueError(f"{name}[{identifier!r}]: expected a string, got {type(text).__name__}")
        ids.append(str(identifier))
        bodies.append(text)
    if len(set(ids)) != len(ids):
        raise ValueError(f"{name}: expected unique ids, got {len(ids) - len(set(ids))} repeated after str()")
    return ids, bodies


class BM25Index:
    """A BM25 index over a corpus, fitted once and queried many times.

    Args:
        corpus: ``{doc id: text}``, not empty.
        k1: term-frequency saturation (bm25s / Lucene default 1.5; Pyserini uses 0.9).
        b: length normalisation in ``[0, 1]`` (default 0.75; Pyserini uses 0.4).
        method: bm25s scoring variant: ``"lucene"``, ``"robertson"``, ``"atire"``,
            ``"bm25l"`` or ``"bm25+"``.
        split_identifiers: add the words of snake_case / camelCase identifiers
            (see :func:`expand_identifiers`) to documents and queries.
        stopwords: a bm25s stop-word language code (``"en"``), a list of words, or
            ``None`` for none.
        stemmer: an optional callable from a list of words to their stems (PyStemmer's
            ``stemWords`` works), applied to documents and queries alike.
        show_progress: show bm25s progress bars; default: only when stderr is a terminal.

    Example:
        >>> index = BM25Index({"d1": "the cat sat", "d2": "dogs bark"})
        >>> run = index.search({"q": "cat", "r": "bark dogs"}, k=5)
        >>> {query: list(hits) for query, hits in run.items()}
        {'q': ['d1'], 'r': ['d2']}
    """

    def __init__(
        self,
        corpus: Mapping[str, str],
        *,
        k1: float = 1.5,
        b: float = 0.75,
        method: str = "lucene",
        split_identifiers: bool = True,
        stopwords: str | list[str] | None = "en",
        stemmer: Callable[[list[str]], list[str]] | None = None,
        show_progress: bool | None = None,
    ) -> None:
        doc_ids, texts = _check_texts("corpus", corpus)
        if not doc_ids:
            raise ValueError("corpus: expected at least one document, got an empty corpus")
        if method not in BM25_METHODS:
            raise ValueError(f"method: expected one of {', '.join(BM25_METHODS)}, got {method!r}")
        if not k1 >= 0:
            raise ValueError(f"k1: expected a non-negative number, got {k1!r}")
        if not 0 <= b <= 1:
            raise ValueError(f"b: expected a number in [0, 1], got {b!r}")
        self.doc_ids = doc_ids
        self.split_identifiers = split_identifiers
        self.stopwords = stopwords
        self.stemmer = stemmer
        self.show_progress = sys.stderr.isatty() if show_progress is None else bool(show_progress)
        tokens = bm25s.tokenize(
            self._prepare(texts), stopwords=stopwords, stemmer=stemmer, show_progress=self.show_progress
        )
        if not tokens.vocab:
            raise ValueError(
                "corpus: expected at least one indexable word (two or more word characters, not a stop word), "
                f"got none in {len(doc_ids)} documents"
            )
        self.retriever = bm25s.BM25(k1=k1, b=b, method=method)
        self.retriever.index(tokens, show_progress=self.show_progress)

    def __len__(self) -> int:
        return len(self.doc_ids)

    def _prepare(self, texts: list[str]) -> list[str]:
        return [expand_identifiers(text) for text in texts] if self.split_identifiers else texts

    def search(self, queries: Mapping[str, str], k: int = 1000) -> Run:
        """The top ``k`` documents of each query as a run ``{query id: {doc id: score}}``.

        Args:
            queries: ``{query id: text}``; an empty mapping gives an empty run.
            k: documents per query (BEIR: 1000); capped at the corpus size. Documents
                sharing no term with the query are left out, so a ranking may be shorter.

        Returns:
            The run, each query's documents in descending score order (plain floats).
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k: expected a positive integer, got {k!r}")
        query_ids, texts = _check_texts("queries", queries)
        if not query_ids:
            return {}
        query_tokens = bm25s.tokenize(
            self._prepare(texts),
            stopwords=self.stopwords,
            stemmer=self.stemmer,
            return_ids=False,
            show_progress=self.show_progress,
        )
        documents, scores = self.retriever.retrieve(
            query_tokens, k=min(k, len(self.doc_ids)), sorted=True, show_progress=self.show_progress
        )
        run: Run = {}
        for query_id, rows, values in zip(query_ids, documents.tolist(), scores.tolist()):
            run[query_id] = {self.doc_ids[row]: float(score) for row, score in zip(rows, values) if score != 0}
        return run


def bm25_run(
    corpus: Mapping[str, str],
    queries: Mapping[str, str],
    *,
    k: int = 1000,
    k1: float = 1.5,
    b: float = 0.75,
    method: str = "lucene",
    split_identifiers: bool = True,
    stopwords: str | list[str] | None = "en",
    stemmer: Callable[[list[str]], list[str]] | None = None,
    show_progress: bool | None = None,
) -> Run:
    """Index ``corpus`` with BM25 and return the top ``k`` documents of every query.

    A one-call form of :class:`BM25Index` (see it for the arguments); the run feeds
    :func:`contrastkit.eval.retrieval.evaluate_run`.

    Example:
        >>> run = bm25_run({"d1": "def getFooBar(): ...", "d2": "def main(): ..."}, {"q": "get foo bar"}, k=2)
        >>> list(run["q"])
        ['d1']
    """
    index = BM25Index(
        corpus,
        k1=k1,
        b=b,
        method=method,
        split_identifiers=split_identifiers,
        stopwords=stopwords,
        stemmer=stemmer,
        show_progress=show_progress,
    )
    return index.search(queries, k=k)
