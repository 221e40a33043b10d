"""Series views: shapes, NaN padding, each view's defining property, TS2Vec crops, determinism, errors."""

import math

import pytest
import torch

from contrastkit.views import (
    SERIES_VIEW_PRESETS,
    SERIES_VIEW_STEPS,
    Jitter,
    Permutation,
    Scaling,
    SeriesViewConfig,
    SeriesViews,
    Speed,
    TeraChannelMask,
    TeraMagnitudeNoise,
    TeraTimeMask,
    TimestampMask,
    TimeWarp,
    Volume,
    build_series_views,
    contextual_crop_pair,
    series_lengths,
    series_view_preset_names,
)
from contrastkit.views import series as series_module

NAN = float("nan")
VIEW_CLASSES = [
    Jitter, Scaling, Volume, TeraMagnitudeNoise, TimestampMask,
    TeraTimeMask, TeraChannelMask, Permutation, TimeWarp, Speed,
]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _series(
    batch: int = 16, channels: int = 10, length: int = 64, *, pad: bool = True, seed: int = 1, dtype=torch.float32
):
    """Random series (values kept away from 0) with NaN end padding on every other row."""
    x = torch.randn(batch, channels, length, generator=_gen(seed), dtype=dtype) + 5.0
    if pad:
        lengths = torch.randint(length // 4, length, (batch,), generator=_gen(seed + 1))
        lengths[::2] = length
        x = x.masked_fill(torch.arange(length) >= lengths.view(-1, 1, 1), NAN)
    return x


def _ramp(batch: int, length: int, lengths=None) -> torch.Tensor:
    """Channel 0 holds the time index, channel 1 its negative: a source index can be read back."""
    t = torch.arange(length, dtype=torch.float32).expand(batch, length)
    x = torch.stack([t, -t], dim=1).clone()
    if lengths is not None:
        x = x.masked_fill(torch.arange(length) >= torch.as_tensor(lengths).view(-1, 1, 1), NAN)
    return x


def _runs(row: torch.Tensor) -> list[int]:
    """Lengths of the runs of True in a 1-D bool tensor."""
    padded = torch.cat([torch.tensor([False]), row, torch.tensor([False])]).int()
    edges = padded.diff()
    starts, ends = (edges == 1).nonzero().flatten(), (edges == -1).nonzero().flatten()
    return (ends - starts).tolist()


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.equal(torch.isnan(a), torch.isnan(b)) and torch.equal(a.nan_to_num(), b.nan_to_num())


# -- every view -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("view_class", VIEW_CLASSES, ids=lambda c: c.__name__)
def test_views_keep_shape_dtype_and_nan_padding(view_class, dtype):
    x = _series(dtype=dtype)
    lengths = series_lengths(x)
    out = view_class(generator=_gen())(x)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    padding = torch.arange(x.shape[-1]) >= lengths.view(-1, 1)
    assert torch.isnan(out).all(dim=1)[padding].all(), "padding must stay NaN"
    if view_class is Speed:  # a faster series ends early: more NaN, never fewer
        assert (torch.isnan(out) >= torch.isnan(x)).all()
    else:
        assert torch.equal(torch.isnan(out), torch.isnan(x))
    assert not _same(out, x), f"{view_class.__name__} with defaults changed nothing"


def test_series_lengths():
    x = _ramp(3, 10, lengths=[10, 4, 0])
    x[0, 1, 9] = NAN  # one channel missing at the end is not padding
    assert series_lengths(x).tolist() == [10, 4, 0]


def test_empty_batch_and_single_timestamp():
    for view_class in VIEW_CLASSES:
        assert view_class()(torch.zeros(0, 3, 20)).shape == (0, 3, 20)
        assert view_class()(torch.ones(2, 3, 1)).shape == (2, 3, 1)


# -- TS2Vec crops -----------------------------------------------------------------------


@pytest.mark.parametrize("temporal_unit", [0, 1, 2])
def test_crop_pair_overlap_invariant_and_inside(temporal_unit):
    generator = _gen(temporal_unit)
    shifted = 0
    for draw in range(150):
        length = int(torch.randint(2 ** (temporal_unit + 1), 60, (1,), generator=generator))
        lengths = torch.randint(1, length + 1, (5,), generator=generator)
        x = _ramp(5, length, lengths)
        x_a, x_b, overlap = contextual_crop_pair(x, temporal_unit=temporal_unit, generator=generator)
        assert isinstance(overlap, int) and 2 ** (temporal_unit + 1) <= overlap <= length
        assert overlap <= x_a.shape[-1] <= length and overlap <= x_b.shape[-1] <= length
        # The overlap: the same original timestamps (and NaN padding) in both crops.
        assert _same(x_a[..., -overlap:], x_b[..., :overlap])
        # Crops of the unpadded series are windows of consecutive timestamps inside [0, T).
        full_a, full_b, overlap_full = contextual_crop_pair(_ramp(5, length), temporal_unit, generator)
        for crop in (full_a, full_b):
            index = crop[:, 0]
            assert not torch.isnan(index).any() and index.min() >= 0 and index.max() <= length - 1
            assert (index.diff(dim=1) == 1).all()
        assert torch.equal(full_a[:, 0, -overlap_full:], full_b[:, 0, :overlap_full])
        shifted += int(full_a[:, 0, 0].unique().numel() > 1)  # per-row offsets differ
    assert shifted > 30


def test_take_per_row_fills_outside_with_nan():
    x = _ramp(2, 6)
    taken = series_module._take_per_row(x, torch.tensor([-2, 4]), 4)
    assert _same(taken[0, 0], torch.tensor([NAN, NAN, 0.0, 1.0]))
    assert _same(taken[1, 0], torch.tensor([4.0, 5.0, NAN, NAN]))


def test_crop_pair_errors():
    with pytest.raises(ValueError, match=r"at least 2\*\*\(temporal_unit\+1\) = 4 timestamps, got T = 3"):
        contextual_crop_pair(torch.randn(2, 1, 3), temporal_unit=1)
    with pytest.raises(ValueError, match="temporal_unit >= 0"):
        contextual_crop_pair(torch.randn(2, 1, 10), temporal_unit=-1)
    with pytest.raises(ValueError, match=r"expected a series batch \[B, C, T\], got \(2, 10\)"):
        contextual_crop_pair(torch.randn(2, 10))


# -- masks ------------------------------------------------------------------------------


def test_binomial_timestamp_mask_fraction_and_whole_timestamps():
    x = _series(512, 3, 100, pad=False)
    out = TimestampMask(p=0.3, generator=_gen())(x)
    zero = out == 0
    assert torch.equal(zero.all(dim=1), zero.any(dim=1)), "a timestamp is masked in every channel"
    masked = zero.all(dim=1)
    assert abs(masked.float().mean().item() - 0.3) < 0.01
    assert torch.equal(out[~zero], x[~zero])
    assert torch.equal(TimestampMask(p=0.0)(x), x)
    assert (TimestampMask(p=1.0)(x) == 0).all()


def test_continuous_timestamp_mask_masks_contiguous_segments():
    x = _series(200, 2, 100)
    lengths = series_lengths(x)
    out = TimestampMask(mode="continuous", generator=_gen())(x)
    masked = (out == 0).all(dim=1)
    binomial_runs = []
    for row, length in zip(masked, lengths.tolist()):
        width = max(1, int(0.1 * length))
        runs = _runs(row)
        assert 1 <= len(runs) <= 5 and all(run >= width for run in runs)
        assert width <= row.sum() <= 5 * width and not row[length:].any()
    for row in (TimestampMask(p=0.5, generator=_gen())(x) == 0).all(dim=1):
        binomial_runs += _runs(row)
    assert sum(binomial_runs) / len(binomial_runs) < 3  # binomial runs are short: the test can tell them apart


def test_tera_time_mask_covers_about_15_percent_in_blocks_of_7():
    x = _series(64, 3, 700, pad=False)
    out = TeraTimeMask(zero_p=1.0, replace_p=0.0, generator=_gen())(x)
    masked = (out == 0).all(dim=1)
    assert torch.equal(masked, (out == 0).any(dim=1))
    fraction = masked.float().mean().item()
    # 15 blocks of 7 frames in 700 (15%); overlaps are allowed, so a little less.
    assert 0.12 < fraction <= 0.15
    for row in masked:
        assert all(run >= 7 for run in _runs(row)) and 7 <= row.sum() <= 105
    assert torch.equal(out[~(out == 0)], x[~(out == 0)])


def test_tera_time_mask_bert_split_per_series():
    x = _series(1000, 2, 50, pad=False)
    out = TeraTimeMask(generator=_gen())(x)  # 80% zero, 10% replace, 10% unchanged
    zeroed = (out == 0).all(dim=1).any(dim=1).float().mean().item()
    unchanged = (out == x).all(dim=2).all(dim=1).float().mean().item()
    assert abs(zeroed - 0.8) < 0.04 and abs(unchanged - 0.1) < 0.03
    assert torch.equal(TeraTimeMask(zero_p=0.0, replace_p=0.0)(x), x)


def test_tera_time_mask_replaces_with_frames_of_the_same_series():
    lengths = [200, 120, 60, 200]
    x = _ramp(4, 200, lengths)
    out = TeraTimeMask(zero_p=0.0, replace_p=1.0, generator=_gen(3))(x)
    changed = (out != x).any(dim=1) & ~torch.isnan(x).any(dim=1)
    assert changed.any(dim=1).all()
    for row, length in enumerate(lengths):
        source = out[row, 0, changed[row]]
        assert (source >= 0).all() and (source < length).all() and (source == source.round()).all()
        assert torch.equal(out[row, :, changed[row]], x[row, :, source.long()])


def test_tera_channel_mask_zeros_one_contiguous_band():
    x = _series(500, 20, 30)
    out = TeraChannelMask(generator=_gen())(x)
    zero = (out == 0) & ~torch.isnan(x)
    band = zero.any(dim=2)  # [B, C]
    assert torch.equal(band, (zero | torch.isnan(x)).all(dim=2))  # the whole series
    widths = band.sum(dim=1)
    assert widths.max() == 4 and widths.min() == 0  # up to int(20 * 0.2) channels
    for row in band:
        assert len(_runs(row)) <= 1
    keep = ~band.unsqueeze(-1).expand_as(x)
    assert _same(out[keep], x[keep])
    assert _same(TeraChannelMask()(x[:, :4]), x[:, :4])  # int(4 * 0.2) = 0 channels


def test_tera_magnitude_noise_probability_and_scale():
    x = _series(2000, 2, 50, pad=False)
    out = TeraMagnitudeNoise(p=0.5, sigma=0.2, generator=_gen())(x)
    noisy = (out != x).any(dim=2).any(dim=1)
    assert abs(noisy.float().mean().item() - 0.5) < 0.04
    assert abs((out - x)[noisy].std().item() - 0.2) < 0.01
    assert torch.equal(TeraMagnitudeNoise(p=0.0)(x), x)


# -- value and time views ---------------------------------------------------------------


def test_jitter_and_scaling_statistics():
    x = _series(400, 3, 100, pad=False)
    assert abs((Jitter(0.1, generator=_gen())(x) - x).std().item() - 0.1) < 0.005
    assert torch.equal(Jitter(0.0)(x), x)
    scaled = Scaling(0.2, generator=_gen())(x)
    factor = scaled / x
    assert (factor - factor[..., :1]).abs().max() < 1e-5  # one factor per series and channel
    assert abs(factor[..., 0].mean().item() - 1.0) < 0.02 and abs(factor[..., 0].std().item() - 0.2) < 0.02
    assert torch.equal(Scaling(0.0)(x), x)


def test_permutation_permutes_segments():
    lengths = [80] * 50 + [37] * 50
    x = _ramp(100, 80, lengths)
    out = Permutation(max_segments=5, generator=_gen())(x)
    identity = 0
    for row, length in enumerate(lengths):
        source = out[row, 0, :length]
        assert torch.equal(source.sort().values, x[row, 0, :length])  # a permutation of the row
        assert torch.isnan(out[row, :, length:]).all()
        assert _same(out[row, 1], -out[row, 0])  # channels move together
        jumps = int((source.diff() != 1).sum())
        assert jumps <= 4  # at most 5 segments
        identity += jumps == 0
    assert identity < 25
    values = _series(8, 3, 40)
    permuted = Permutation(generator=_gen())(values)
    assert _same(permuted.sort(dim=-1).values, values.sort(dim=-1).values)


def test_time_warp_identity_at_zero_and_endpoints():
    x = _series(32, 3, 64)
    assert _same(TimeWarp(sigma=0.0)(x), x)
    lengths = series_lengths(x)
    out = TimeWarp(sigma=0.5, generator=_gen())(x)
    rows = torch.arange(32)
    assert _same(out[..., 0], x[..., 0])
    assert _same(out[rows, :, lengths - 1], x[rows, :, lengths - 1])
    ramp = _ramp(32, 64, lengths)
    warped = TimeWarp(sigma=0.5, generator=_gen())(ramp)[:, 0]
    for row, length in enumerate(lengths.tolist()):
        assert (warped[row, :length].diff() > 0).all()  # monotone
        assert torch.isnan(warped[row, length:]).all()
    assert not torch.allclose(warped.nan_to_num(), ramp[:, 0].nan_to_num())


def test_speed_factor_one_is_identity_and_factors_resample():
    x = _series(16, 3, 50)
    assert _same(Speed(factor=(1.0, 1.0))(x), x)
    lengths = [50, 21]
    ramp = _ramp(2, 50, lengths)
    fast = Speed(factor=(2.0, 2.0))(ramp)[:, 0]
    for row, length in enumerate(lengths):
        end = (length - 1) // 2 + 1
        assert torch.equal(fast[row, :end], 2.0 * torch.arange(end, dtype=torch.float32))
        assert torch.isnan(fast[row, end:]).all()
    odd = Speed(factor=(1.1, 1.1))(_ramp(1, 50))[0, 0]  # reads t * 1.1 while it stays <= 49
    assert ((odd[:45] - 1.1 * torch.arange(45)).abs() < 1e-4).all() and torch.isnan(odd[45:]).all()
    slow = Speed(factor=(0.5, 0.5))(ramp)[:, 0]
    for row, length in enumerate(lengths):
        assert torch.equal(slow[row, :length], 0.5 * torch.arange(length, dtype=torch.float32))
        assert torch.isnan(slow[row, length:]).all()


def test_volume_gain_in_decibels():
    x = _series(64, 3, 20)
    assert _same(Volume(gain_db=(0.0, 0.0))(x), x)
    gained = Volume(gain_db=(6.0, 6.0))(x)
    assert torch.equal(torch.isnan(gained), torch.isnan(x))
    assert ((gained - x * 10 ** (6 / 20)).nan_to_num().abs() <= 1e-6 * x.nan_to_num().abs()).all()
    ratio = Volume(generator=_gen())(x) / x
    per_row = ratio[:, 0, 0]
    assert (ratio - per_row.view(-1, 1, 1)).nan_to_num().abs().max() < 1e-5  # one gain per series
    assert per_row.min() >= 10 ** (-6 / 20) - 1e-6 and per_row.max() <= 10 ** (6 / 20) + 1e-6
    assert per_row.unique().numel() == 64  # drawn per series


# -- composition, presets, determinism ---------------------------------------------------


@pytest.mark.parametrize("preset", sorted(SERIES_VIEW_PRESETS))
def test_presets_pair_shapes_and_padding(preset):
    x = _series()
    view_a, view_b = build_series_views(preset, generator=_gen())
    assert isinstance(view_a, SeriesViews) and view_a is not view_b
    for view in (view_a, view_b):
        out = view(x)
        assert out.shape == x.shape and out.dtype == x.dtype
        padding = torch.arange(x.shape[-1]) >= series_lengths(x).view(-1, 1)
        assert torch.isnan(out).all(dim=1)[padding].all()
        assert _same(out, x) == (preset == "identity")


def test_preset_names_and_steps():
    assert series_view_preset_names() == sorted(["identity", "jitter-scale", "tera", "speed-volume", "permute-jitter"])
    view, _ = build_series_views("tera")
    assert [type(step) for step in view.steps] == [TeraTimeMask, TeraChannelMask, TeraMagnitudeNoise]
    view, _ = build_series_views("jitter-scale", jitter_sigma=0.5, steps=["jitter", "time_warp"])
    assert [type(step) for step in view.steps] == [Jitter, TimeWarp] and view.steps[0].sigma == 0.5
    assert set(SERIES_VIEW_STEPS) >= {"speed", "volume", "timestamp_mask", "permutation"}
    config = SeriesViewConfig(steps=["speed"], speed_factor=[0.8, 1.2])
    assert config.steps == ("speed",) and SeriesViews.from_config(config).steps[0].factor == (0.8, 1.2)


@pytest.mark.parametrize("preset", sorted(SERIES_VIEW_PRESETS))
def test_seeded_generator_is_reproducible(preset):
    x = _series()
    first = build_series_views(preset, generator=_gen(5))[0](x)
    second = build_series_views(preset, generator=_gen(5))[0](x)
    other = build_series_views(preset, generator=_gen(6))[0](x)
    assert _same(first, second)
    assert _same(first, other) == (preset == "identity")


def test_global_rng_and_crop_pair_reproducible():
    x = _series(8, 2, 40)
    torch.manual_seed(11)
    first = [TimeWarp()(x), Permutation()(x), *contextual_crop_pair(x)[:2]]
    torch.manual_seed(11)
    second = [TimeWarp()(x), Permutation()(x), *contextual_crop_pair(x)[:2]]
    assert all(_same(a, b) for a, b in zip(first, second))
    a1, b1, o1 = contextual_crop_pair(x, generator=_gen(2))
    a2, b2, o2 = contextual_crop_pair(x, generator=_gen(2))
    assert o1 == o2 and _same(a1, a2) and _same(b1, b2)


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Jitter(-0.1), r"Jitter: expected a finite sigma >= 0, got -0.1"),
        (lambda: Scaling(math.inf), r"Scaling: expected a finite sigma >= 0"),
        (lambda: TimestampMask(p=1.5), r"TimestampMask: expected p in \[0, 1\], got 1.5"),
        (lambda: TimestampMask(mode="gaps"), r"expected mode in \('binomial', 'continuous'\), got 'gaps'"),
        (lambda: TimestampMask(segment_fraction=0), r"segment_fraction in \(0, 1\]"),
        (lambda: TeraTimeMask(width=0), r"TeraTimeMask: expected an int width >= 1, got 0"),
        (lambda: TeraTimeMask(zero_p=0.95, replace_p=0.1), r"zero_p \+ replace_p <= 1"),
        (lambda: TeraChannelMask(max_fraction=2), r"max_fraction in \[0, 1\]"),
        (lambda: TeraMagnitudeNoise(p=-1), r"TeraMagnitudeNoise: expected p in \[0, 1\]"),
        (lambda: Permutation(max_segments=1), r"Permutation: expected an int max_segments >= 2, got 1"),
        (lambda: TimeWarp(knots=2.5), r"TimeWarp: expected an int knots >= 1"),
        (lambda: Speed(factor=(0.0, 1.0)), r"Speed: expected factor \(low, high\) with 0 < low <= high"),
        (lambda: Speed(factor=(1.1, 0.9)), r"0 < low <= high, got \(1.1, 0.9\)"),
        (lambda: Volume(gain_db=3), r"Volume: expected gain_db as a pair \(low, high\), got 3"),
        (lambda: SeriesViews([lambda x: x]), r"SeriesViews: expected nn.Module steps"),
        (lambda: SeriesViewConfig(steps=("warp",)), r"unknown series view step 'warp' \(did you mean 'time_warp'\?\); expected one of: .*time_warp"),
        (lambda: SeriesViewConfig(steps="jitter"), r"expected steps as a sequence of names"),
        (lambda: SeriesViewConfig(jitter_sigma=-1), r"SeriesViewConfig: Jitter: expected a finite sigma >= 0"),
        (
            lambda: build_series_views("simclr"),
            r"unknown series view preset 'simclr'; expected one of: identity, jitter-scale",
        ),
        (
            lambda: build_series_views("tera", sigma=0.1),
            r"views.sigma: unknown key; did you mean 'warp_sigma'\?",
        ),
        (lambda: build_series_views("tera", generator=0), r"expected generator to be a torch.Generator, got int"),
    ],
)
def test_bad_arguments_raise_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_inputs_raise_clear_errors():
    for view in (Jitter(), SeriesViews(), build_series_views("identity")[0]):
        with pytest.raises(ValueError, match=r"expected a series batch \[B, C, T\], got \(4, 50\)"):
            view(torch.randn(4, 50))
        with pytest.raises(ValueError, match=r"expected a floating-point series batch .* got dtype torch.int64"):
            view(torch.ones(2, 1, 5, dtype=torch.long))
