"""kNN detection over an embedding database, with training-free incremental adaptation.

DeTeCtive (Guo et al., NeurIPS 2024, "DeTeCtive: Detecting AI-generated Text via
Multi-Level Contrastive Learning") does not classify with a trained head: the
embeddings of the training texts form a database, and a query text takes the
majority label of its ``k`` nearest neighbours by cosine similarity. A new source
(an unseen generator, a new domain) is handled by *appending* its embeddings to
the database — Training-Free Incremental Adaptation (TFIA), no retraining.

Unlike :func:`contrastkit.eval.knn.knn_accuracy` (InstDisc's similarity-weighted
vote), the vote here is unweighted, as in the paper's kNN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastkit.utils.checks import check_embeddings, check_labels

__all__ = ["KNNDetector"]


class KNNDetector:
    """Majority vote of the ``k`` nearest database embeddings (DeTeCtive's detector).

    ``predict`` returns, for each query, the most frequent label among its ``k``
    most similar database rows; a tie between labels goes to the label of the
    nearest neighbour among the tied ones. ``add`` appends embeddings (TFIA).

    Args:
        k: the number of neighbours (default 10; the paper tunes it); clamped to
            the database size.
        normalize: L2-normalise database and queries, i.e. rank by cosine
            similarity (default ``True``); ``False`` ranks by the inner product.
        chunk_size: query rows per block (memory is ``chunk_size x N`` floats).

    Example:
        >>> detector = KNNDetector(k=3).fit(torch.randn(20, 8), torch.randint(0, 2, (20,)))
        >>> detector.predict(torch.randn(5, 8)).shape
        torch.Size([5])
        >>> detector.add(torch.randn(4, 8), torch.full((4,), 2))  # a new source, no retraining
        KNNDetector(k=3, normalize=True, size=24)
    """

    def __init__(self, k: int = 10, *, normalize: bool = True, chunk_size: int = 1024) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"KNNDetector: expected k to be an int >= 1, got {k!r}")
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"KNNDetector: expected chunk_size to be an int >= 1, got {chunk_size!r}")
        self.k = k
        self.normalize = bool(normalize)
        self.chunk_size = chunk_size
        self.embeddings: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None

    def __len__(self) -> int:
        """Number of database rows."""
        return 0 if self.embeddings is None else self.embeddings.shape[0]

    def _prepare(self, embeddings: torch.Tensor) -> torch.Tensor:
        embeddings = embeddings.detach()
        return F.normalize(embeddings, dim=1) if self.normalize else embeddings

    def fit(self, embeddings: torch.Tensor, labels: torch.Tensor) -> KNNDetector:
        """Replace the database with ``embeddings [N, D]`` and their ``labels [N]``; returns ``self``."""
        check_embeddings("embeddings", embeddings)
        labels = check_labels("labels", labels, embeddings.shape[0], allow_bool=False, non_negative=True)
        self.embeddings = self._prepare(embeddings)
        self.labels = labels.to(embeddings.device)
        return self

    def add(self, embeddings: torch.Tensor, labels: torch.Tensor) -> KNNDetector:
        """Append ``embeddings [N, D]`` with ``labels [N]`` to the database (TFIA); returns ``self``.

        Labels may be new classes (a new source). On an empty detector this is :meth:`fit`.
        """
        if self.embeddings is None or self.labels is None:
            return self.fit(embeddings, labels)
        check_embeddings("embeddings", embeddings, dim=self.embeddings.shape[1])
        labels = check_labels("labels", labels, embeddings.shape[0], allow_bool=False, non_negative=True)
        prepared = self._prepare(embeddings).to(self.embeddings)
        self.embeddings = torch.cat([self.embeddings, prepared])
        self.labels = torch.cat([self.labels, labels.to(self.labels.device)])
        return self

    @torch.no_grad()
    def predict(self, queries: torch.Tensor) -> torch.Tensor:
        """The majority label of each query's ``k`` nearest database rows.

        Args:
            queries: ``[M, D]`` query embeddings.

        Returns:
            ``[M]`` int64 labels on the database's device.

        Raises:
            ValueError: before :meth:`fit`, or on a bad query batch.
        """
        if self.embeddings is None or self.labels is None:
            raise ValueError("KNNDetector.predict: expected a fitted detector, got an empty database; call fit first")
        check_embeddings("queries", queries, dim=self.embeddings.shape[1], min_rows=0)
        database, database_labels = self.embeddings, self.labels
        k = min(self.k, database.shape[0])
        num_classes = int(database_labels.max()) + 1
        queries = self._prepare(queries).to(database)
        predictions = torch.empty(queries.shape[0], dtype=torch.long, device=database.device)
        for start in range(0, queries.shape[0], self.chunk_size):
            block = queries[start : start + self.chunk_size]
            _, neighbours = (block @ database.T).topk(k, dim=1)  # sorted, nearest first
            neighbour_labels = database_labels[neighbours]  # [m, k]
            votes = torch.zeros(block.shape[0], num_classes, dtype=torch.long, device=database.device)
            votes.scatter_add_(1, neighbour_labels, torch.ones_like(neighbour_labels))
            tied = votes == votes.max(dim=1, keepdim=True).values  # [m, C]: the labels with the most votes
            # The nearest neighbour whose label is among the tied ones: argmax returns the first True.
            first = tied.gather(1, neighbour_labels).to(torch.uint8).argmax(dim=1, keepdim=True)
            predictions[start : start + block.shape[0]] = neighbour_labels.gather(1, first).squeeze(1)
        return predictions

    def score(self, queries: torch.Tensor, labels: torch.Tensor) -> float:
        """Accuracy of :meth:`predict` on ``queries [M, D]`` against ``labels [M]``, in ``[0, 1]``."""
        if not isinstance(queries, torch.Tensor) or queries.dim() != 2:
            got = tuple(queries.shape) if isinstance(queries, torch.Tensor) else type(queries).__name__
            raise ValueError(f"queries: expected shape [M, D], got {got}")
        labels = check_labels("labels", labels, queries.shape[0], allow_bool=False, non_negative=True)
        if queries.shape[0] == 0:
            raise ValueError("queries: expected at least one query to score, got 0")
        predictions = self.predict(queries)
        return float((predictions == labels.to(predictions.device)).float().mean())

    def __repr__(self) -> str:
        return f"KNNDetector(k={self.k}, normalize={self.normalize}, size={len(self)})"
