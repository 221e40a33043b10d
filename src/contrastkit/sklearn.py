"""scikit-learn integration: a contrastkit recipe as a fit/transform estimator.

:class:`ContrastiveTransformer` trains a recipe's method (SimCLR, TS2Vec, BYOL, ...) on the
array given to ``fit`` and returns the learned representations from ``transform``, so a
contrastive encoder is one step of a scikit-learn ``Pipeline``, cloned by ``GridSearchCV``
and cross-validated like any transformer::

    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVC
    from contrastkit.sklearn import ContrastiveTransformer

    model = make_pipeline(ContrastiveTransformer("ts2vec", train_steps=100, random_state=0), SVC())
    model.fit(X_train, y_train)      # X_train: series [N, T] or [N, C, T]
    model.score(X_test, y_test)

Recipe keys are keyword arguments named ``SECTION_KEY`` (``train_steps=100`` is
``--set train.steps=100``, ``encoder_output_dim=64`` is ``--set encoder.output_dim=64``) or a
whole section by name (``method="byol"`` is ``--set method=byol``: its options start from
scratch); they are get_params/set_params parameters like the named ones, so a grid search
can tune them (``{"contrastivetransformer__method_temperature": [0.1, 0.5]}``). The recipe's
``data:`` section does not apply (the data is ``X``) and nothing is evaluated.

This module is named after scikit-learn and imports it absolutely (``import sklearn``
inside the package still finds scikit-learn itself).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from contrastkit.methods.registry import METHODS
from contrastkit.recipes import DEFAULT_RECIPE
from contrastkit.train.config import NAMED_SECTIONS, load_config, validate_config
from contrastkit.train.in_memory import DEFAULT_EMBED_BATCH, embed_arrays, fit_on_arrays
from contrastkit.utils.schema import ConfigError
from contrastkit.views.image import view_preset_names
from contrastkit.views.series import series_view_preset_names

__all__ = ["ContrastiveTransformer", "recipe_modality"]

#: The kinds of array this estimator trains on, with the sample layouts it accepts.
MODALITIES = ("image", "series")
#: Recipe sections a keyword argument may change (``data`` is ``X``; ``name``/``seed`` have their own).
OVERRIDABLE_SECTIONS = ("encoder", "views", "method", "train", "eval")


def _is_override(name: str) -> bool:
    """Whether a keyword argument names a recipe key (``train_steps``) or a section (``method``)."""
    section, separator, key = name.partition("_")
    if section not in OVERRIDABLE_SECTIONS:
        return False
    return (bool(separator) and bool(key) and "__" not in name) or (not separator and section in NAMED_SECTIONS)


def apply_keyword_overrides(config: dict[str, Any], overrides: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """``config`` with each ``SECTION_KEY=value`` (or ``SECTION=NAME``) applied, then validated.

    Raises:
        ValueError: naming the keyword, for a name that is not ``SECTION_KEY`` of a section
            in :data:`OVERRIDABLE_SECTIONS`, or a key or value the recipe schema rejects.
    """
    config = {**config, **{k: dict(v) for k, v in config.items() if isinstance(v, dict)}}
    for name, value in overrides.items():
        if not _is_override(name):
            raise ValueError(f"{owner}: unknown parameter {name!r}; expected a recipe key as SECTION_KEY "
                             f"(e.g. train_steps=100) with SECTION one of {', '.join(OVERRIDABLE_SECTIONS)}")
        section, _, key = name.partition("_")
        if not key:  # method="byol": another method, options from scratch (as --set method=byol)
            config[section] = {NAMED_SECTIONS[section]: value}
        else:
            config.setdefault(section, {})[key] = value
    try:
        validate_config(config)
    except ConfigError as error:
        raise ValueError(f"{owner}: {error}") from error
    return config


def recipe_modality(config: dict[str, Any]) -> str | None:
    """``"image"`` or ``"series"``: what the recipe's views (else its method) train on; ``None`` if unclear."""
    preset = (config.get("views") or {}).get("preset")
    in_series, in_images = preset in series_view_preset_names(), preset in view_preset_names()
    if in_series != in_images:
        return "series" if in_series else "image"
    method = (config.get("method") or {}).get("name")
    declared = set(METHODS[method].modalities) & set(MODALITIES) if method in METHODS else set()
    return declared.pop() if len(declared) == 1 else None


class ContrastiveTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Train a contrastkit recipe's method on ``X`` in ``fit``; ``transform`` returns its embeddings.

    Accepted arrays (anything ``numpy.asarray`` takes; float32 inside):

    * images: ``[N, C, H, W]``, or ``[N, H, W]`` for one channel;
    * series: ``[N, C, T]``, or ``[N, T]`` for one channel; NaN marks a missing value.

    ``transform`` expects samples of the shape ``fit`` saw and returns float32
    ``[N, D]`` (``D`` the encoder's representation size, ``embedding_dim_``).

    Args:
        recipe: a shipped recipe name (``contrastkit list``) or a path to a recipe YAML file.
        random_state: the seed of the model, augmentations and batch order (an int, or a
            ``numpy.random.RandomState`` to draw one from); ``None`` keeps the recipe's
            ``seed``. The same value gives the same embeddings on the same machine.
        modality: ``"image"``, ``"series"`` or ``"auto"`` (from the recipe's view preset, or
            its method when that trains on one of the two only).
        verbose: show the trainer's progress.
        **overrides: recipe keys as ``SECTION_KEY=value`` (``train_steps=50``,
            ``encoder_output_dim=64``, ``train_device="cpu"``) or ``SECTION=NAME``
            (``method="byol"``), for the sections ``encoder``, ``views``, ``method``, ``train``
            and ``eval`` (``eval_batch_size`` sets the rows per ``embed`` call).

    Attributes:
        method_: the trained :class:`~contrastkit.methods.base.Method` (its ``encoder`` is the backbone).
        config_: the recipe as trained (every override applied, ``seed`` set).
        modality_: ``"image"`` or ``"series"``.
        sample_shape_: the shape of one sample as trained, ``(C, H, W)`` or ``(C, T)``.
        embedding_dim_: ``D``, the number of output features.
        n_features_in_: ``X.shape[1]`` of the array given to ``fit`` (scikit-learn's convention).

    Example:
        >>> from sklearn.datasets import load_digits
        >>> images = load_digits().images / 16.0                      # [1797, 8, 8]
        >>> model = ContrastiveTransformer("simclr-fashion-mnist", train_steps=20, encoder="mlp",
        ...                                random_state=0).fit(images)
        >>> model.transform(images[:5]).shape
        (5, 128)
    """

    def __init__(self, recipe: str = DEFAULT_RECIPE, *, random_state: Any = None, modality: str = "auto",
                 verbose: bool = False, **overrides: Any) -> None:
        self.recipe = recipe
        self.random_state = random_state
        self.modality = modality
        self.verbose = verbose
        # Private (scikit-learn's rule for attributes set in __init__); get_params exposes each one.
        self._overrides = dict(overrides)

    # ------------------------------------------------------------------ parameters

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The named parameters plus every recipe override, as given (what ``clone`` copies)."""
        return {**super().get_params(deep=deep), **self._overrides}

    def set_params(self, **params: Any) -> "ContrastiveTransformer":
        """Set named parameters or recipe overrides (``SECTION_KEY``); returns ``self``."""
        for name in [name for name in params if _is_override(name)]:
            self._overrides[name] = params.pop(name)
        return super().set_params(**params)

    def _owner(self) -> str:
        return f"ContrastiveTransformer(recipe={self.recipe!r})"

    def _config(self) -> dict[str, Any]:
        """The recipe with the overrides and ``random_state`` applied, validated."""
        config = apply_keyword_overrides(load_config(self.recipe), self._overrides, self._owner())
        if self.random_state is not None:
            config["seed"] = self._seed()
        return config

    def _seed(self) -> int:
        state = self.random_state
        if isinstance(state, np.random.RandomState):
            return int(state.randint(0, 2**31 - 1))
        if isinstance(state, numbers.Integral) and not isinstance(state, bool):
            return int(state)
        raise ValueError(f"{self._owner()}: random_state: expected None, an int or a numpy RandomState, got {state!r}")

    def _resolve_modality(self, config: dict[str, Any]) -> str:
        if self.modality != "auto":
            if self.modality not in MODALITIES:
                raise ValueError(f"{self._owner()}: modality: expected 'auto' or one of {list(MODALITIES)}, "
                                 f"got {self.modality!r}")
            return self.modality
        found = recipe_modality(config)
        if found is None:
            raise ValueError(f"{self._owner()}: cannot tell whether the recipe trains on images or series "
                             f"(views.preset {config['views'].get('preset')!r}); pass modality='image' or 'series'")
        return found

    def __sklearn_tags__(self):  # noqa: D105 - scikit-learn's estimator tags
        tags = super().__sklearn_tags__()
        try:
            modality = self.modality if self.modality in MODALITIES else recipe_modality(load_config(self.recipe))
        except (ValueError, OSError):  # a bad recipe fails in fit, with its message; tags must not raise
            modality = None
        series = modality == "series"
        tags.input_tags.two_d_array = series  # [N, T] is a batch of univariate series; images need 3-D
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = series  # NaN = a missing value of a series
        tags.transformer_tags.preserves_dtype = ["float32"]  # embeddings are float32, whatever came in
        return tags

    # ------------------------------------------------------------------ data

    def _samples(self, X: Any, modality: str, *, reset: bool) -> np.ndarray:
        """``X`` checked (finite, or NaN for series) and reshaped to ``[N, C, H, W]`` / ``[N, C, T]``."""
        X = validate_data(self, X, reset=reset, allow_nd=True, dtype=np.float32,
                          ensure_all_finite="allow-nan" if modality == "series" else True,
                          ensure_min_samples=2 if reset else 1)  # fmt: skip
        if modality == "series":
            if X.ndim not in (2, 3):
                raise ValueError(f"{self._owner()}: expected series as [N, T] or [N, C, T], got shape {X.shape}")
            X = X[:, None, :] if X.ndim == 2 else X
        else:
            if X.ndim not in (3, 4):
                raise ValueError(f"{self._owner()}: expected images as [N, H, W] or [N, C, H, W], got shape {X.shape}")
            X = X[:, None] if X.ndim == 3 else X
            if not np.isfinite(X).all():
                raise ValueError(f"{self._owner()}: images must be finite; got NaN or inf")
        if not reset and tuple(X.shape[1:]) != self.sample_shape_:
            raise ValueError(f"{self._owner()}: X has samples of shape {tuple(X.shape[1:])}, but "
                             f"ContrastiveTransformer was fitted on samples of shape {self.sample_shape_}")
        return np.ascontiguousarray(X)

    # ------------------------------------------------------------------ fit / transform

    def fit(self, X: Any, y: Any = None) -> "ContrastiveTransformer":
        """Train the recipe's method on ``X`` (``y`` is used only by supervised methods, e.g. SupCon).

        Raises:
            ValueError: for an unknown recipe key, an array of the wrong layout or with
                NaN/inf (NaN is allowed in series), fewer than 2 samples, or a supervised
                method without ``y``.
        """
        config = self._config()
        modality = self._resolve_modality(config)
        samples = self._samples(X, modality, reset=True)
        labels = None
        if y is not None and METHODS[config["method"]["name"]].needs_labels:
            y = np.asarray(y)
            if y.shape != (samples.shape[0],):
                raise ValueError(f"{self._owner()}: expected y of shape ({samples.shape[0]},), got {y.shape}")
            labels = torch.as_tensor(np.unique(y, return_inverse=True)[1].reshape(-1), dtype=torch.long)
        self.method_ = fit_on_arrays(config, torch.from_numpy(samples), labels, modality=modality,
                                     verbose=self.verbose)  # fmt: skip
        self.config_ = config
        self.modality_ = modality
        self.sample_shape_ = tuple(int(size) for size in samples.shape[1:])
        probe = embed_arrays(self.method_, torch.from_numpy(samples[:2]))
        self.embedding_dim_ = int(probe.shape[1])
        self._n_features_out = self.embedding_dim_
        return self

    def transform(self, X: Any) -> np.ndarray:
        """The trained method's embeddings of ``X``: float32 ``[N, embedding_dim_]``.

        Raises:
            sklearn.exceptions.NotFittedError: before ``fit``.
            ValueError: for samples of another shape than ``fit`` saw, or NaN/inf in images.
        """
        check_is_fitted(self, "method_")
        samples = self._samples(X, self.modality_, reset=False)
        batch_size = int((self.config_.get("eval") or {}).get("batch_size", DEFAULT_EMBED_BATCH))
        return embed_arrays(self.method_, torch.from_numpy(samples), batch_size=batch_size)
