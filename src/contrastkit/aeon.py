"""aeon integration: TS2Vec as an aeon collection transformer.

:class:`TS2VecTransformer` is an ``aeon.transformations.collection.BaseCollectionTransformer``:
``fit`` trains contrastkit's TS2Vec (the ``ts2vec`` recipe: dilated convolutions,
hierarchical contrast of overlapping crops, weight averaging) on a collection of series,
``transform`` returns one max-pooled representation per series (``[n_cases, output_dim]``,
TS2Vec's instance representation). It accepts what aeon collection transformers accept
(a 3-D NumPy array ``[n_cases, n_channels, n_timepoints]``, a 2-D one for univariate series,
or aeon's other equal-length collection types), so it sits in aeon and scikit-learn pipelines::

    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVC
    from contrastkit.aeon import TS2VecTransformer

    model = make_pipeline(TS2VecTransformer(n_iters=100, random_state=0), SVC())
    model.fit(X_train, y_train).score(X_test, y_test)

The training itself is :class:`contrastkit.sklearn.ContrastiveTransformer` on the
``ts2vec`` recipe; this class maps TS2Vec's hyper-parameters (the names of the recipe, with
TS2Vec's ``n_iters``) onto it and adds what aeon expects (tags, input conversion, checks).
This module is named after aeon and imports it absolutely.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from aeon.transformations.collection import BaseCollectionTransformer

from contrastkit.sklearn import ContrastiveTransformer

__all__ = ["TS2VecTransformer", "ts2vec_iterations"]


def ts2vec_iterations(n_values: int) -> int:
    """TS2Vec's default number of iterations: 200 for at most 100,000 training values (N x C x T), else 600."""
    return 200 if n_values <= 100_000 else 600


class TS2VecTransformer(BaseCollectionTransformer):
    """TS2Vec (Yue et al., AAAI 2022) representations of a collection of series, for aeon.

    Args:
        output_dim: size of the representation (TS2Vec: 320).
        hidden_dim: channels of the dilated convolutions (64).
        depth: number of residual dilated blocks (10).
        n_iters: optimiser steps; ``None`` follows TS2Vec (200, or 600 above 100,000 values).
        batch_size: series per step, cut to the collection's size when larger (8).
        lr: AdamW learning rate (0.001, constant).
        alpha: weight of the instance-wise term of the hierarchical loss (0.5).
        temporal_unit: first pyramid scale with the temporal term (0).
        max_train_length: longer series train on random windows of this length (3000).
        device: where to train and embed (``"cpu"``, ``"cuda"``, ``"auto"``).
        random_state: seed of the weights, crops and batch order (``None``: the recipe's seed 0);
            the same value gives the same representations on the same machine.
        verbose: show training progress.

    Attributes:
        transformer_: the fitted :class:`~contrastkit.sklearn.ContrastiveTransformer`
            (its ``method_`` is the trained :class:`~contrastkit.methods.ts2vec.TS2Vec`).
        n_iters_: the optimiser steps taken.
    """

    _tags = {
        "X_inner_type": "numpy3D",
        "output_data_type": "Tabular",
        "capability:multivariate": True,
        "capability:missing_values": True,  # NaN is a missing value; TS2Vec masks it out
        "algorithm_type": "deeplearning",
        "python_dependencies": "torch",
        "fit_is_empty": False,
        "requires_y": False,
    }

    def __init__(
        self,
        output_dim: int = 320,
        hidden_dim: int = 64,
        depth: int = 10,
        n_iters: int | None = None,
        batch_size: int = 8,
        lr: float = 0.001,
        alpha: float = 0.5,
        temporal_unit: int = 0,
        max_train_length: int = 3000,
        device: str = "cpu",
        random_state: int | None = None,
        verbose: bool = False,
    ) -> None:
        self.output_dim = output_dim
        self.hidden_dim = hidden_dim
        self.depth = depth
        self.n_iters = n_iters
        self.batch_size = batch_size
        self.lr = lr
        self.alpha = alpha
        self.temporal_unit = temporal_unit
        self.max_train_length = max_train_length
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        super().__init__()

    def _fit(self, X: np.ndarray, y: Any = None) -> "TS2VecTransformer":
        """Train TS2Vec on ``X [n_cases, n_channels, n_timepoints]`` (``y`` is ignored)."""
        steps = self.n_iters if self.n_iters is not None else ts2vec_iterations(int(np.asarray(X).size))
        self.transformer_ = ContrastiveTransformer(
            "ts2vec", random_state=self.random_state, modality="series", verbose=self.verbose,
            encoder_output_dim=self.output_dim, encoder_hidden_dim=self.hidden_dim, encoder_depth=self.depth,
            method_alpha=self.alpha, method_temporal_unit=self.temporal_unit,
            method_max_train_length=self.max_train_length,
            train_steps=steps, train_batch_size=self.batch_size, train_lr=self.lr, train_device=self.device,
        ).fit(X)  # fmt: skip
        self.n_iters_ = int(steps)
        return self

    def _transform(self, X: np.ndarray, y: Any = None) -> np.ndarray:
        """``[n_cases, output_dim]`` instance representations (max over time, averaged weights)."""
        return self.transformer_.transform(X)

    @classmethod
    def _get_test_params(cls, parameter_set: str = "default") -> dict[str, Any]:
        """A tiny, fast configuration for aeon's estimator checks."""
        return {"output_dim": 8, "hidden_dim": 8, "depth": 2, "n_iters": 2, "batch_size": 4, "random_state": 0}
