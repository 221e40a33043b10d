"""Batched time-series augmentations for contrastive learning (TS2Vec, TS-TCC, TERA, CAB-KWS).

A series batch is a float tensor ``[B, C, T]`` (channels, time). Series of
unequal length are padded at the end with NaN; a row's *length* ``L`` is one
past its last timestamp where some channel is not NaN, and every view here
keeps the padding (timestamps ``t >= L``) NaN: value-wise views (noise, gain,
masks) leave every NaN entry NaN, and time-moving views (permutation, warp,
speed) act on ``[0, L)`` of each row only. NaN inside a row (a missing value)
travels with its timestamp.

Every view draws one set of random parameters per row with vectorised tensor
ops (no Python loop over the batch), from torch's global RNG for the batch's
device or from an optional ``torch.Generator`` (drawn on the generator's device
and moved to the batch's): the same seed gives the same views on the same device.

What is here:

* :func:`contextual_crop_pair`: TS2Vec's two random overlapping crops.
* value views: :class:`Jitter`, :class:`Scaling`, :class:`Volume`,
  :class:`TeraMagnitudeNoise`;
* masks: :class:`TimestampMask`, :class:`TeraTimeMask`, :class:`TeraChannelMask`;
* time-moving views: :class:`Permutation`, :class:`TimeWarp`, :class:`Speed`;
* :class:`SeriesViews` chains views; :class:`SeriesViewConfig` names their
  parameters; :func:`build_series_views` builds a named preset's pair of views.

Defaults for the generic views (jitter sigma 0.03, scaling sigma 0.1,
permutation up to 5 segments, time warp sigma 0.2 with 4 knots) are those of
Um et al. 2017 ("Data augmentation of wearable sensor data for Parkinson's
disease monitoring using convolutional neural networks"), kept by Iwana &
Uchida 2021's survey; they suit z-normalised series. TS-TCC (Eldele et al.,
IJCAI 2021) tunes larger values per data set; pass them as overrides.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from contrastkit.utils.checks import check_int as _check_int
from contrastkit.utils.checks import fail as _fail
from contrastkit.utils.checks import unknown_name_error
from contrastkit.utils.registry import Registry

__all__ = [
    "SERIES_VIEW_PRESETS",
    "SERIES_VIEW_STEPS",
    "Jitter",
    "Permutation",
    "Scaling",
    "SeriesViewConfig",
    "SeriesViews",
    "Speed",
    "TeraChannelMask",
    "TeraMagnitudeNoise",
    "TeraTimeMask",
    "TimeWarp",
    "TimestampMask",
    "Volume",
    "build_series_views",
    "contextual_crop_pair",
    "series_lengths",
    "series_view_preset_names",
]

TIMESTAMP_MASK_MODES = ("binomial", "continuous")


# -- checks and random numbers ----------------------------------------------------------


def _check_series(owner: str, x: object) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{owner}: expected a series batch [B, C, T], got {got}")
    if not x.is_floating_point():
        raise ValueError(f"{owner}: expected a floating-point series batch (NaN marks padding), got dtype {x.dtype}")


def _check_probability(owner: str, name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        _fail(owner, f"{name} in [0, 1]", value)
    return float(value)


def _check_non_negative(owner: str, name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < math.inf:
        _fail(owner, f"a finite {name} >= 0", value)
    return float(value)


def _check_range(owner: str, name: str, value: object, *, positive: bool) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        _fail(owner, f"{name} as a pair (low, high)", value)
    bound = "0 < low <= high" if positive else "low <= high, both finite"
    if not (math.isfinite(low) and math.isfinite(high) and low <= high and (low > 0 or not positive)):
        _fail(owner, f"{name} (low, high) with {bound}", value)
    return low, high


def _rand(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Uniform [0, 1) float32 of ``shape`` on ``device``."""
    if generator is None:
        return torch.rand(shape, device=device)
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


def _randn(
    shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    if generator is None:
        return torch.randn(shape, device=device).to(dtype)
    return torch.randn(shape, generator=generator, device=generator.device).to(device=device, dtype=dtype)


def _randint(
    low: int, high: int, shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """Integers uniform in ``[low, high)`` (``high > low``), int64 on ``device``."""
    if generator is None:
        return torch.randint(low, high, shape, device=device)
    return torch.randint(low, high, shape, generator=generator, device=generator.device).to(device)


def _below(high: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Per-entry integers uniform in ``[0, high)`` for an int64 tensor ``high >= 1``."""
    draw = _rand(tuple(high.shape), generator, high.device)
    return torch.minimum((draw * high).long(), high - 1).clamp(min=0)


def series_lengths(x: torch.Tensor) -> torch.Tensor:
    """Observed length of each row of ``x [B, C, T]``: ``[B]`` int64.

    One past the last timestamp where some channel is not NaN (0 for an all-NaN
    row); later timestamps are end padding.
    """
    present = ~torch.isnan(x).all(dim=1)  # [B, T]
    steps = torch.arange(1, x.shape[-1] + 1, device=x.device)
    return (present * steps).amax(dim=1) if x.shape[-1] > 0 else present.sum(dim=1)


def _interpolate_time(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of ``x [B, C, T]`` at fractional times ``positions [B, T']``.

    Integer positions read the sample exactly (the neighbour is not touched, so a
    NaN neighbour does not leak in).
    """
    batch, channels, length = x.shape
    positions = positions.clamp(0, length - 1)
    low = positions.floor().long()
    high = (low + 1).clamp(max=length - 1)
    frac = (positions - low).to(x.dtype).unsqueeze(1)
    size = (batch, channels, positions.shape[-1])
    left = x.gather(2, low.unsqueeze(1).expand(size))
    right = x.gather(2, high.unsqueeze(1).expand(size))
    return torch.where(frac == 0, left, left + (right - left) * frac)


# -- TS2Vec's overlapping crops ----------------------------------------------------------


def _take_per_row(x: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
    """``x[i, :, starts[i] : starts[i] + length]`` for every row; outside ``[0, T)`` is NaN."""
    batch, channels, total = x.shape
    index = starts.view(-1, 1) + torch.arange(length, device=x.device)  # [B, length]
    inside = (index >= 0) & (index < total)
    taken = x.gather(2, index.clamp(0, total - 1).unsqueeze(1).expand(batch, channels, length))
    return taken.masked_fill(~inside.unsqueeze(1), float("nan"))


def contextual_crop_pair(
    x: torch.Tensor, temporal_unit: int = 0, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """TS2Vec's two random overlapping crops ("contextual consistency").

    Yue et al., AAAI 2022, "TS2Vec: Towards Universal Representation of Time
    Series", Section 3.2 and ``TS2Vec.fit`` in zhihanyue/ts2vec. With
    ``T = x.shape[-1]``: an overlap ``[left, right)`` of ``crop_l`` timestamps
    (``crop_l`` uniform in ``[2**(temporal_unit+1), T]``) is extended to the left
    for crop a (``[eleft, right)``) and to the right for crop b (``[left,
    eright)``); each row is then shifted by its own random offset, drawn so that
    both crops stay inside ``[0, T)``. Positions outside ``[0, T)`` would read as
    NaN (the offsets never put them there); NaN padding of the input is copied.

    The last ``overlap`` timestamps of ``x_a`` and the first ``overlap`` of
    ``x_b`` are the same original timestamps of every row.

    Args:
        x: series ``[B, C, T]`` with ``T >= 2**(temporal_unit+1)``.
        temporal_unit: the smallest crop is ``2**(temporal_unit+1)`` timestamps
            (TS2Vec's default 0: at least 2).
        generator: optional ``torch.Generator``; by default torch's global RNG.

    Returns:
        ``(x_a, x_b, overlap)``: ``x_a [B, C, right - eleft]``, ``x_b [B, C,
        eright - left]`` and the overlap length ``crop_l`` (an int).

    Raises:
        ValueError: wrong shape or dtype, negative ``temporal_unit``, or series
            shorter than the smallest crop.

    Example:
        >>> x_a, x_b, overlap = contextual_crop_pair(torch.randn(8, 3, 100))
        >>> bool((x_a[..., -overlap:] == x_b[..., :overlap]).all())
        True
    """
    owner = "contextual_crop_pair"
    _check_series(owner, x)
    unit = _check_int(owner, "temporal_unit", temporal_unit, 0)
    total = x.shape[-1]
    smallest = 2 ** (unit + 1)
    if total < smallest:
        raise ValueError(
            f"{owner}: expected series of at least 2**(temporal_unit+1) = {smallest} timestamps, "
            f"got T = {total} (shape {tuple(x.shape)})"
        )
    device = x.device

    def scalar(low: int, high: int) -> int:
        # Scalars come to the host anyway: draw them there (no device sync per draw).
        return int(_randint(low, high, (1,), generator, torch.device("cpu")))

    crop_l = scalar(smallest, total + 1)
    crop_left = scalar(0, total - crop_l + 1)
    crop_right = crop_left + crop_l
    crop_eleft = scalar(0, crop_left + 1)
    crop_eright = scalar(crop_right, total + 1)
    offsets = _randint(-crop_eleft, total - crop_eright + 1, (x.shape[0],), generator, device)
    x_a = _take_per_row(x, offsets + crop_eleft, crop_right - crop_eleft)
    x_b = _take_per_row(x, offsets + crop_left, crop_eright - crop_left)
    return x_a, x_b, crop_l


# -- views -------------------------------------------------------------------------------


class _SeriesView(nn.Module):
    """Base of the views: input checks, the generator and NaN bookkeeping.

    A value-wise view (``moves_time = False``) writes its result back only where
    the input was not NaN, so padding and missing values stay NaN. A time-moving
    view handles the row lengths itself.
    """

    moves_time: ClassVar[bool] = False

    def __init__(self, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.generator = generator

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return one random view of every series in ``x``.

        Args:
            x: float series ``[B, C, T]``; NaN marks end padding (and missing values).

        Returns:
            Views of the same shape, dtype and device.

        Raises:
            ValueError: wrong rank or a non-float dtype.
        """
        _check_series(type(self).__name__, x)
        if x.numel() == 0:
            return x
        out = self._augment(x)
        if not self.moves_time:
            out = torch.where(torch.isnan(x), x, out)
        return out


class Jitter(_SeriesView):
    """Additive Gaussian noise: ``x + sigma * N(0, 1)`` on every value.

    Um et al. 2017 (jitter), TS-TCC's weak and strong views (Eldele et al. 2021).

    Args:
        sigma: noise standard deviation (default 0.03, Um et al. 2017, for
            z-normalised series).
        generator: optional ``torch.Generator``.
    """

    def __init__(self, sigma: float = 0.03, *, generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        self.sigma = _check_non_negative("Jitter", "sigma", sigma)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        if self.sigma == 0:
            return x
        return x + _randn(tuple(x.shape), self.generator, x.device, x.dtype) * self.sigma


class Scaling(_SeriesView):
    """Multiply each channel of each series by one factor drawn from ``N(1, sigma)``.

    Um et al. 2017 (scaling); TS-TCC's weak view scales per series and channel too.

    Args:
        sigma: standard deviation of the factor (default 0.1, Um et al. 2017).
        generator: optional ``torch.Generator``.
    """

    def __init__(self, sigma: float = 0.1, *, generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        self.sigma = _check_non_negative("Scaling", "sigma", sigma)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, _ = x.shape
        factor = 1.0 + _randn((batch, channels, 1), self.generator, x.device, x.dtype) * self.sigma
        return x * factor


class Volume(_SeriesView):
    """Gain: multiply each series by ``10 ** (g / 20)`` with ``g`` uniform in ``gain_db`` dB.

    CAB-KWS's volume augmentation (keyword spotting; METHODS #33): gain in
    ``[-6, +6]`` dB. A gain scales amplitudes (waveforms, linear spectra); on
    log-magnitude features it would be an additive shift instead.

    Args:
        gain_db: ``(low, high)`` range of the gain in decibels (default ``(-6, 6)``).
        generator: optional ``torch.Generator``.
    """

    def __init__(self, gain_db: tuple[float, float] = (-6.0, 6.0), *, generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        self.gain_db = _check_range("Volume", "gain_db", gain_db, positive=False)

    def extra_repr(self) -> str:
        return f"gain_db={self.gain_db}"

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        low, high = self.gain_db
        gain = _rand((x.shape[0], 1, 1), self.generator, x.device) * (high - low) + low
        return x * torch.pow(10.0, gain / 20.0).to(x.dtype)


class TeraMagnitudeNoise(_SeriesView):
    """TERA's magnitude alteration: add ``N(0, sigma)`` noise to a series with probability ``p``.

    Liu, Li & Lee 2021, "TERA: Self-Supervised Learning of Transformer Encoder
    Representation for Speech" (METHODS #27). s3prl draws one coin per batch and
    noise of standard deviation 0.2; here each series gets its own coin.

    Args:
        p: probability that a series gets noise (default 0.5: TERA's released
            config sets 0, the paper explores values above 0; 0.5 is our choice).
        sigma: noise standard deviation (default 0.2, as s3prl).
        generator: optional ``torch.Generator``.
    """

    def __init__(self, p: float = 0.5, sigma: float = 0.2, *, generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        self.p = _check_probability("TeraMagnitudeNoise", "p", p)
        self.sigma = _check_non_negative("TeraMagnitudeNoise", "sigma", sigma)

    def extra_repr(self) -> str:
        return f"p={self.p}, sigma={self.sigma}"

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        selected = _rand((x.shape[0], 1, 1), self.generator, x.device) < self.p
        noise = _randn(tuple(x.shape), self.generator, x.device, x.dtype) * self.sigma
        return torch.where(selected, x + noise, x)


class TimestampMask(_SeriesView):
    """Mask whole timestamps (every channel) of each series, setting them to 0.

    TS2Vec (Yue et al. 2022, Section 3.1): ``mode="binomial"`` masks each
    timestamp independently with probability ``p`` (TS2Vec: 0.5);
    ``mode="continuous"`` masks ``segments`` random contiguous segments of
    ``max(1, int(segment_fraction * L))`` timestamps each (TS2Vec's ablation: 5
    segments of 10% of the length ``L``; ``p`` is then unused). TS2Vec masks the
    latent vectors after its input projection; this is the same mask on the
    input, with 0 as the masked value (what a linear projection without bias
    maps to 0). Do not combine with an encoder that masks by itself
    (:class:`~contrastkit.nn.series.DilatedConvEncoder` in training mode).
    Padding stays NaN.

    Args:
        p: masking probability per timestamp for ``"binomial"`` (default 0.5).
        mode: ``"binomial"`` or ``"continuous"``.
        segments: number of segments for ``"continuous"`` (default 5).
        segment_fraction: segment length as a fraction of the row's length, in
            ``(0, 1]`` (default 0.1).
        generator: optional ``torch.Generator``.
    """

    def __init__(
        self,
        p: float = 0.5,
        mode: str = "binomial",
        segments: int = 5,
        segment_fraction: float = 0.1,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(generator)
        owner = "TimestampMask"
        self.p = _check_probability(owner, "p", p)
        if mode not in TIMESTAMP_MASK_MODES:
            _fail(owner, f"mode in {TIMESTAMP_MASK_MODES}", mode)
        self.mode = mode
        self.segments = _check_int(owner, "segments", segments, 1)
        fraction_ok = isinstance(segment_fraction, (int, float)) and not isinstance(segment_fraction, bool)
        if not (fraction_ok and 0.0 < segment_fraction <= 1.0):
            _fail(owner, "segment_fraction in (0, 1]", segment_fraction)
        self.segment_fraction = float(segment_fraction)

    def extra_repr(self) -> str:
        if self.mode == "binomial":
            return f"p={self.p}, mode='binomial'"
        return f"mode='continuous', segments={self.segments}, segment_fraction={self.segment_fraction}"

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """The ``[B, T]`` bool mask (True = masked) that :meth:`forward` would apply to ``x``."""
        batch, _, length = x.shape
        device = x.device
        if self.mode == "binomial":
            return _rand((batch, length), self.generator, device) < self.p
        lengths = series_lengths(x)
        width = (lengths.float() * self.segment_fraction).long().clamp(min=1)  # [B] (float32: MPS has no float64)
        starts = _below((lengths - width + 1).clamp(min=1).unsqueeze(1).expand(batch, self.segments), self.generator)
        # +1 at each segment's start, -1 one past its end; a running sum > 0 is inside a segment.
        edges = torch.zeros(batch, length + 1, device=device, dtype=torch.int32)
        ones = torch.ones_like(starts, dtype=torch.int32)
        edges.scatter_add_(1, starts, ones)
        edges.scatter_add_(1, (starts + width.unsqueeze(1)).clamp(max=length), -ones)
        steps = torch.arange(length, device=device)
        return (edges.cumsum(dim=1)[:, :length] > 0) & (steps < lengths.unsqueeze(1))

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "binomial" and self.p == 0:
            return x
        return x.masked_fill(self.mask(x).unsqueeze(1), 0.0)


class TeraTimeMask(_SeriesView):
    """TERA's time alteration: BERT-style masking of contiguous blocks of frames.

    Liu, Li & Lee 2021 (TERA; METHODS #27), as s3prl implements it: per series of
    length ``L``, ``round(L * proportion / width)`` blocks of ``width`` frames start
    at distinct random frames (blocks may overlap, so a little less than
    ``proportion`` ends up covered). Then, per series, with probability
    ``zero_p`` the selected frames are set to 0, with probability ``replace_p``
    each block is replaced by a random block of frames of the same series, and
    otherwise the series is left unchanged (TERA's 80/10/10; s3prl draws this
    choice once per series, not per frame). Padding stays NaN.

    Args:
        proportion: fraction of frames to select (default 0.15).
        width: frames per block (default 7).
        zero_p: probability of zeroing the selected frames (default 0.8).
        replace_p: probability of replacing them by random frames (default 0.1);
            ``zero_p + replace_p <= 1``.
        generator: optional ``torch.Generator``.
    """

    def __init__(
        self,
        proportion: float = 0.15,
        width: int = 7,
        zero_p: float = 0.8,
        replace_p: float = 0.1,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(generator)
        owner = "TeraTimeMask"
        self.proportion = _check_probability(owner, "proportion", proportion)
        self.width = _check_int(owner, "width", width, 1)
        self.zero_p = _check_probability(owner, "zero_p", zero_p)
        self.replace_p = _check_probability(owner, "replace_p", replace_p)
        if self.zero_p + self.replace_p > 1.0 + 1e-12:
            _fail(owner, "zero_p + replace_p <= 1", (zero_p, replace_p))

    def extra_repr(self) -> str:
        return f"proportion={self.proportion}, width={self.width}, zero_p={self.zero_p}, replace_p={self.replace_p}"

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, length = x.shape
        width = self.width
        device = x.device
        starts_range = length - width + 1  # block starts 0 .. T - width
        most = min(round(length * self.proportion / width), max(starts_range, 0))
        if most == 0:
            return x
        lengths = series_lengths(x)
        row_starts = (lengths - width + 1).clamp(min=0)  # valid starts per row
        blocks = torch.minimum(torch.round(lengths.float() * self.proportion / width).long(), row_starts)  # [B]
        # Distinct random starts: the `most` smallest random keys among the row's valid starts.
        keys = _rand((batch, starts_range), self.generator, device)
        keys = keys.masked_fill(torch.arange(starts_range, device=device) >= row_starts.unsqueeze(1), 2.0)
        starts = keys.topk(most, dim=1, largest=False).indices  # [B, most]
        valid = torch.arange(most, device=device) < blocks.unsqueeze(1)
        # For every frame, the latest block start at or before it (-1: none).
        marks = torch.full((batch, length), -1, device=device, dtype=torch.long)
        marks.scatter_reduce_(1, starts, torch.where(valid, starts, -1), reduce="amax")
        latest = marks.cummax(dim=1).values
        steps = torch.arange(length, device=device)
        covered = (latest >= 0) & (steps - latest < width)  # the latest block ends furthest right
        choice = _rand((batch, 1), self.generator, device)
        zero = covered & (choice < self.zero_p)
        out = x.masked_fill(zero.unsqueeze(1), 0.0)
        if self.replace_p > 0:
            replace = covered & (choice >= self.zero_p) & (choice < self.zero_p + self.replace_p)
            # Block j copies the block starting at a random frame r_j: frame t <- r_j + (t - s_j).
            sources = _below(row_starts.clamp(min=1).unsqueeze(1).expand(batch, most), self.generator)
            shift = torch.zeros(batch, length, device=device, dtype=torch.long)
            shift.scatter_(1, starts, sources - starts)
            source = steps + shift.gather(1, latest.clamp(min=0))
            source = torch.where(replace, source, steps).clamp(0, length - 1)
            copied = x.gather(2, source.unsqueeze(1).expand(batch, channels, length))
            out = torch.where(replace.unsqueeze(1), copied, out)
        return out


class TeraChannelMask(_SeriesView):
    """TERA's frequency alteration: zero one random contiguous band of channels for the whole series.

    Liu, Li & Lee 2021 (TERA; METHODS #27): per series, a band width uniform in
    ``{0, ..., int(C * max_fraction)}`` at a uniform start (s3prl's
    ``mask_frequency``). With ``C * max_fraction < 1`` (e.g. one channel) no
    channel is masked. Padding stays NaN.

    Args:
        max_fraction: largest band as a fraction of the channels (default 0.2).
        generator: optional ``torch.Generator``.
    """

    def __init__(self, max_fraction: float = 0.2, *, generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        self.max_fraction = _check_probability("TeraChannelMask", "max_fraction", max_fraction)

    def extra_repr(self) -> str:
        return f"max_fraction={self.max_fraction}"

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, _ = x.shape
        widest = int(channels * self.max_fraction)
        if widest == 0:
            return x
        device = x.device
        width = _below(torch.full((batch,), widest + 1, device=device), self.generator)
        start = _below(channels - width + 1, self.generator)
        band = torch.arange(channels, device=device)
        inside = (band >= start.unsqueeze(1)) & (band < (start + width).unsqueeze(1))  # [B, C]
        return x.masked_fill(inside.unsqueeze(-1), 0.0)


class Permutation(_SeriesView):
    """Cut each series into random segments and put them back in a random order.

    Um et al. 2017 (permutation); TS-TCC's strong view (Eldele et al. 2021). Per
    row of length ``L``: ``n`` segments with ``n`` uniform in ``{2, ...,
    max_segments}`` (at most ``L``), cut at ``n - 1`` distinct random points,
    then shuffled (a uniformly random order, which may be the original one).
    Padding stays at the end.

    Args:
        max_segments: the most segments per series, >= 2 (default 5, Um et al. 2017).
        generator: optional ``torch.Generator``.
    """

    moves_time = True

    def __init__(self, max_segments: int = 5, *, generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        self.max_segments = _check_int("Permutation", "max_segments", max_segments, 2)

    def extra_repr(self) -> str:
        return f"max_segments={self.max_segments}"

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, length = x.shape
        most = self.max_segments
        cuts_most = min(most - 1, length - 1)
        if cuts_most == 0:
            return x
        device = x.device
        lengths = series_lengths(x)
        count = _below(torch.full((batch,), most - 1, device=device), self.generator) + 2  # {2..most}
        count = torch.minimum(count, lengths.clamp(min=1))
        # Distinct cut points in [1, L - 1]: the smallest random keys among them.
        keys = _rand((batch, length - 1), self.generator, device)
        points = torch.arange(1, length, device=device)
        keys = keys.masked_fill(points >= lengths.unsqueeze(1), 2.0)
        cuts = keys.topk(cuts_most, dim=1, largest=False).indices + 1  # [B, cuts_most]
        used = torch.arange(cuts_most, device=device) < (count - 1).unsqueeze(1)
        edges = torch.zeros(batch, length + 1, device=device, dtype=torch.long)
        edges.scatter_add_(1, torch.where(used, cuts, length), used.long())
        segment = edges.cumsum(dim=1)[:, :length]  # [B, T] segment id of each timestamp
        # A random rank per segment; sort timestamps by (rank of their segment, time).
        rank = _rand((batch, most), self.generator, device).argsort(dim=1)
        steps = torch.arange(length, device=device)
        seg_rank = torch.where(steps < lengths.unsqueeze(1), rank.gather(1, segment), most)
        order = (seg_rank * length + steps).argsort(dim=1)
        return x.gather(2, order.unsqueeze(1).expand(batch, channels, length))


class TimeWarp(_SeriesView):
    """Smooth monotone random warp of the time axis (Um et al. 2017, time warping).

    Per row of length ``L``: a random speed curve through ``knots + 2`` equally
    spaced knots over ``[0, L - 1]`` with log-normal values ``exp(sigma * N(0,
    1))`` (always positive; Um et al. use ``N(1, sigma)``), linearly
    interpolated, is integrated (trapezoid rule) and rescaled to a monotone map
    ``w`` with ``w(0) = 0`` and ``w(L - 1) = L - 1``; the view reads the series at
    ``w(t)`` by linear interpolation. ``sigma = 0`` is the identity. Padding
    stays NaN.

    Args:
        sigma: spread of the knot speeds (default 0.2, Um et al. 2017).
        knots: interior knots (default 4, Um et al. 2017).
        generator: optional ``torch.Generator``.
    """

    moves_time = True

    def __init__(self, sigma: float = 0.2, knots: int = 4, *, generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        self.sigma = _check_non_negative("TimeWarp", "sigma", sigma)
        self.knots = _check_int("TimeWarp", "knots", knots, 1)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, knots={self.knots}"

    def positions(self, x: torch.Tensor) -> torch.Tensor:
        """The ``[B, T]`` source times :meth:`forward` would read (``t`` itself on padding)."""
        batch, _, length = x.shape
        device = x.device
        lengths = series_lengths(x)
        span = (lengths - 1).clamp(min=0)
        spanf = span.to(torch.float32).unsqueeze(1)
        steps = torch.arange(length, device=device)
        stepsf = steps.to(torch.float32)
        intervals = self.knots + 1
        speeds = torch.exp(self.sigma * _randn((batch, intervals + 1), self.generator, device, torch.float32))
        knot_time = (stepsf * intervals / spanf.clamp(min=1)).clamp(0, intervals)  # [B, T] in knot units
        low = knot_time.floor().long().clamp(max=intervals - 1)
        speed = torch.lerp(speeds.gather(1, low), speeds.gather(1, low + 1), knot_time - low)
        increments = (speed[:, :-1] + speed[:, 1:]) / 2
        increments = increments * (steps[1:] <= span.unsqueeze(1))  # only inside [0, L - 1]
        integral = torch.cat([torch.zeros(batch, 1, device=device), increments.cumsum(dim=1)], dim=1)
        total = integral.gather(1, span.unsqueeze(1))
        # (integral * span) / total keeps the identity exact at sigma = 0.
        warp = (integral * spanf / total.clamp(min=torch.finfo(torch.float32).tiny)).clamp(max=spanf)
        warp = torch.where(steps == span.unsqueeze(1), spanf, warp)
        return torch.where(steps < lengths.unsqueeze(1), warp, stepsf)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        return _interpolate_time(x, self.positions(x))


class Speed(_SeriesView):
    """Change the speed of each series by a factor uniform in ``factor``; keep its length.

    CAB-KWS's speed augmentation (keyword spotting; METHODS #33): factor in
    ``[0.9, 1.1]``. The view reads row ``i`` at times ``t * f_i`` by linear
    interpolation: ``f > 1`` plays faster, so the row ends early and its tail
    becomes NaN padding; ``f < 1`` plays slower and is cropped at the row's
    length. On waveforms this is speed perturbation (pitch moves too); on feature
    frames a time stretch. ``factor = (1, 1)`` is the identity.

    Args:
        factor: ``(low, high)`` range of the speed factor, ``0 < low <= high``
            (default ``(0.9, 1.1)``).
        generator: optional ``torch.Generator``.
    """

    moves_time = True

    def __init__(self, factor: tuple[float, float] = (0.9, 1.1), *, generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        self.factor = _check_range("Speed", "factor", factor, positive=True)

    def extra_repr(self) -> str:
        return f"factor={self.factor}"

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, length = x.shape
        device = x.device
        low, high = self.factor
        factor = _rand((batch, 1), self.generator, device) * (high - low) + low
        steps = torch.arange(length, device=device)
        positions = steps.to(torch.float32) * factor  # [B, T]
        lengths = series_lengths(x).unsqueeze(1)
        inside = (steps < lengths) & (positions <= (lengths - 1).to(torch.float32))
        out = _interpolate_time(x, torch.where(inside, positions, steps.to(torch.float32)))
        return out.masked_fill(~inside.unsqueeze(1), float("nan"))


# -- composition, config and presets -----------------------------------------------------


class SeriesViews(nn.Module):
    """Apply series views one after the other (like ``torchvision``'s ``Compose``).

    Args:
        steps: the views, in order; none is the identity.

    Example:
        >>> views = SeriesViews([Scaling(0.1), Jitter(0.03)])
        >>> views(torch.randn(4, 3, 50)).shape
        torch.Size([4, 3, 50])
    """

    def __init__(self, steps: Iterable[nn.Module] = ()) -> None:
        super().__init__()
        steps = list(steps)
        for step in steps:
            if not isinstance(step, nn.Module):
                raise ValueError(f"SeriesViews: expected nn.Module steps, got {type(step).__name__}")  # noqa: TRY004
        self.steps = nn.ModuleList(steps)

    @classmethod
    def from_config(cls, config: SeriesViewConfig, generator: torch.Generator | None = None) -> SeriesViews:
        """The views named by ``config.steps``, with ``config``'s parameters."""
        return cls(_STEP_BUILDERS[name](config, generator) for name in config.steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` through every step (checked to be a float ``[B, C, T]`` batch)."""
        _check_series("SeriesViews", x)
        for step in self.steps:
            x = step(x)
        return x


@dataclass(frozen=True)
class SeriesViewConfig:
    """Parameters of a chain of series views; ``steps`` names which views run, in order.

    Attributes:
        steps: names from ``SERIES_VIEW_STEPS``: ``"jitter"``, ``"scaling"``,
            ``"permutation"``, ``"time_warp"``, ``"timestamp_mask"``,
            ``"tera_time_mask"``, ``"tera_channel_mask"``,
            ``"tera_magnitude_noise"``, ``"speed"``, ``"volume"``.
        jitter_sigma: :class:`Jitter` ``sigma``.
        scaling_sigma: :class:`Scaling` ``sigma``.
        max_segments: :class:`Permutation` ``max_segments``.
        warp_sigma: :class:`TimeWarp` ``sigma``.
        warp_knots: :class:`TimeWarp` ``knots``.
        mask_p: :class:`TimestampMask` ``p``.
        mask_mode: :class:`TimestampMask` ``mode``.
        tera_proportion: :class:`TeraTimeMask` ``proportion``.
        tera_width: :class:`TeraTimeMask` ``width``.
        tera_zero_p: :class:`TeraTimeMask` ``zero_p``.
        tera_replace_p: :class:`TeraTimeMask` ``replace_p``.
        tera_channel_fraction: :class:`TeraChannelMask` ``max_fraction``.
        tera_noise_p: :class:`TeraMagnitudeNoise` ``p``.
        tera_noise_sigma: :class:`TeraMagnitudeNoise` ``sigma``.
        speed_factor: :class:`Speed` ``factor``.
        gain_db: :class:`Volume` ``gain_db``.
    """

    steps: tuple[str, ...] = ()
    jitter_sigma: float = 0.03
    scaling_sigma: float = 0.1
    max_segments: int = 5
    warp_sigma: float = 0.2
    warp_knots: int = 4
    mask_p: float = 0.5
    mask_mode: str = "binomial"
    tera_proportion: float = 0.15
    tera_width: int = 7
    tera_zero_p: float = 0.8
    tera_replace_p: float = 0.1
    tera_channel_fraction: float = 0.2
    tera_noise_p: float = 0.5
    tera_noise_sigma: float = 0.2
    speed_factor: tuple[float, float] = (0.9, 1.1)
    gain_db: tuple[float, float] = (-6.0, 6.0)

    def __post_init__(self) -> None:
        # Recipes loaded from YAML give lists; keep the dataclass hashable and comparable.
        if isinstance(self.steps, str):
            raise ValueError(  # noqa: TRY004 - bad input is a ValueError throughout the library
                f"SeriesViewConfig: expected steps as a sequence of names, got the string {self.steps!r}"
            )
        object.__setattr__(self, "steps", tuple(self.steps))
        for name in ("speed_factor", "gain_db"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                object.__setattr__(self, name, tuple(value))
        for step in self.steps:
            if step not in _STEP_BUILDERS:
                raise unknown_name_error("series view step", step, _STEP_BUILDERS)
        # Every parameter is checked by the view that takes it, whether or not it runs.
        for build in _STEP_BUILDERS.values():
            try:
                build(self, None)
            except ValueError as error:
                raise ValueError(f"SeriesViewConfig: {error}") from None


_STEP_BUILDERS: dict[str, Callable[[SeriesViewConfig, torch.Generator | None], nn.Module]] = {
    "jitter": lambda c, g: Jitter(c.jitter_sigma, generator=g),
    "scaling": lambda c, g: Scaling(c.scaling_sigma, generator=g),
    "permutation": lambda c, g: Permutation(c.max_segments, generator=g),
    "time_warp": lambda c, g: TimeWarp(c.warp_sigma, c.warp_knots, generator=g),
    "timestamp_mask": lambda c, g: TimestampMask(c.mask_p, c.mask_mode, generator=g),
    "tera_time_mask": lambda c, g: TeraTimeMask(
        c.tera_proportion, c.tera_width, c.tera_zero_p, c.tera_replace_p, generator=g
    ),
    "tera_channel_mask": lambda c, g: TeraChannelMask(c.tera_channel_fraction, generator=g),
    "tera_magnitude_noise": lambda c, g: TeraMagnitudeNoise(c.tera_noise_p, c.tera_noise_sigma, generator=g),
    "speed": lambda c, g: Speed(c.speed_factor, generator=g),
    "volume": lambda c, g: Volume(c.gain_db, generator=g),
}

SERIES_VIEW_STEPS: tuple[str, ...] = tuple(_STEP_BUILDERS)
"""Names of the views a :class:`SeriesViewConfig` can chain."""

SERIES_VIEW_PRESETS: Registry[tuple[str, ...]] = Registry("series view preset", {
    # TS2Vec: the overlapping crops are the views; nothing else changes.
    "identity": (),
    # TS-TCC's weak view (Eldele et al. 2021): jitter(scaling(x)).
    "jitter-scale": ("scaling", "jitter"),
    # TERA's three alterations (Liu et al. 2021).
    "tera": ("tera_time_mask", "tera_channel_mask", "tera_magnitude_noise"),
    # CAB-KWS: speed and volume perturbation.
    "speed-volume": ("speed", "volume"),
    # TS-TCC's strong view: jitter(permutation(x)).
    "permute-jitter": ("permutation", "jitter"),
})
"""Series view presets by name: the steps each view of the pair runs."""


def series_view_preset_names() -> list[str]:
    """Names of the registered series view presets, sorted."""
    return SERIES_VIEW_PRESETS.names()


def build_series_views(preset: str, **overrides: object) -> tuple[SeriesViews, SeriesViews]:
    """Build the two view transforms of a named series preset (the same transform twice).

    Presets: ``"identity"`` (TS2Vec, whose views are its crops), ``"jitter-scale"``
    (scaling then jitter: TS-TCC's weak view), ``"tera"`` (TERA's time mask,
    channel mask and magnitude noise), ``"speed-volume"`` (CAB-KWS),
    ``"permute-jitter"`` (permutation then jitter: TS-TCC's strong view).

    Args:
        preset: one of ``series_view_preset_names()``.
        **overrides: ``SeriesViewConfig`` fields applied to both views (``steps``
            replaces the preset's chain), or ``generator`` (shared by both).

    Returns:
        ``(view_a, view_b)``, two ``SeriesViews`` modules.

    Raises:
        ValueError: unknown preset, unknown option or invalid parameter.

    Example:
        >>> view_a, view_b = build_series_views("jitter-scale", jitter_sigma=0.05)
        >>> view_a(torch.randn(4, 3, 50)).shape
        torch.Size([4, 3, 50])
    """
    SERIES_VIEW_PRESETS[preset]  # an unknown preset: the registry's error
    from contrastkit.utils.schema import Parameter, check_section, dataclass_parameters

    # Checked against SeriesViewConfig's declarations, naming the recipe's key (views.jitter_sigma).
    parameters = {**dataclass_parameters(SeriesViewConfig), "generator": Parameter()}
    overrides = check_section("views", overrides, parameters)
    generator = overrides.pop("generator", None)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(
            f"build_series_views: expected generator to be a torch.Generator, got {type(generator).__name__}"
        )
    fields = {"steps": SERIES_VIEW_PRESETS[preset], **overrides}
    config = SeriesViewConfig(**fields)  # type: ignore[arg-type]
    return SeriesViews.from_config(config, generator), SeriesViews.from_config(config, generator)
