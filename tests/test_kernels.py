"""Indicator kernels against the naive references and numpy/scipy."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings, strategies as st

from vibra.ingest.features import compute, indicator_columns
from vibra.settings import FeatureSettings
from vibra.signal._kernels import TIME_COLUMNS
from vibra.signal.indicators import (flat_and_clipped, frame, n_windows, spectral_indicators, time_indicators,
                                     window_starts)

import naive

BANDS = ((0.0, 200.0), (200.0, 1000.0), (1000.0, 3000.0), (5000.0, 9000.0))


@st.composite
def signals(draw, min_len=8, max_len=3000):
    """Vibration-like random signals: offset + scaled noise, sometimes with a tone or impulses."""
    n = draw(st.integers(min_len, max_len))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = draw(st.sampled_from([1e-3, 0.1, 1.0, 50.0]))
    offset = draw(st.floats(-20, 20)) * scale
    kind = draw(st.sampled_from(["gauss", "uniform", "tone", "impulses", "laplace"]))
    if kind == "gauss":
        x = rng.standard_normal(n)
    elif kind == "uniform":
        x = rng.uniform(-1, 1, n)
    elif kind == "tone":
        x = np.sin(2 * np.pi * rng.uniform(0.001, 0.4) * np.arange(n)) + 0.1 * rng.standard_normal(n)
    elif kind == "laplace":
        x = rng.laplace(size=n)
    else:
        x = 0.05 * rng.standard_normal(n)
        x[rng.integers(0, n, max(1, n // 100))] += 5.0
    return offset + scale * x


@settings(max_examples=150, deadline=None)
@given(x=signals(), frame_length=st.integers(2, 700), hop_frac=st.floats(0.1, 1.0))
def test_time_indicators_match_naive(x, frame_length, hop_frac):
    hop = max(1, int(frame_length * hop_frac))
    got = time_indicators(x, frame_length, hop)
    starts = window_starts(len(x), frame_length, hop)
    assert got.shape == (n_windows(len(x), frame_length, hop), len(TIME_COLUMNS))
    for row, s in zip(got, starts):
        want = naive.time_indicators(x[s:s + frame_length])
        np.testing.assert_allclose(row, want, rtol=1e-6, atol=1e-9 * (1 + abs(want[0])), equal_nan=True)


@settings(max_examples=60, deadline=None)
@given(x=signals(min_len=64), frame_length=st.integers(16, 500))
def test_time_indicators_match_scipy(x, frame_length):
    frames = frame(x, frame_length, frame_length)
    got = time_indicators(x, frame_length, frame_length)
    var = frames.var(axis=1)
    ok = var > 1e-12 * (1 + frames.mean(axis=1) ** 2)
    np.testing.assert_allclose(got[:, 0], frames.mean(axis=1), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got[:, 1], frames.std(axis=1), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(got[:, 2], np.sqrt((frames ** 2).mean(axis=1)), rtol=1e-9)
    np.testing.assert_allclose(got[ok, 6], scipy.stats.kurtosis(frames[ok], axis=1, fisher=True) + 3.0, rtol=1e-6)
    np.testing.assert_allclose(got[ok, 7], scipy.stats.skew(frames[ok], axis=1), rtol=1e-5, atol=1e-7)


def test_gaussian_kurtosis_is_pearson_three():
    x = np.random.default_rng(0).standard_normal(1 << 20)
    k = time_indicators(x, 1 << 20, 1 << 20)[0, 6]
    assert abs(k - 3.0) < 0.02  # Pearson: a Gaussian reads 3, not 0


def test_constant_window_gives_nan_shape_ratios_not_garbage():
    x = np.full(64, 2.5)
    row = time_indicators(x, 64, 64)[0]
    assert row[0] == 2.5 and row[1] == 0.0 and row[2] == 2.5
    assert math.isnan(row[6]) and math.isnan(row[7])
    assert row[5] == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(x=signals(min_len=256, max_len=4000), frame_length=st.sampled_from([64, 128, 255, 256, 512]),
       fs=st.sampled_from([1000.0, 12000.0, 25600.0]))
def test_spectral_indicators_match_numpy_loop(x, frame_length, fs):
    frames = np.ascontiguousarray(frame(x, frame_length, frame_length))
    got = spectral_indicators(frames, fs, BANDS)
    for row, w in zip(got, frames):
        want = naive.spectral_indicators(w, fs, BANDS)
        assert row[0] == pytest.approx(want[0])
        np.testing.assert_allclose(row[1:], want[1:], rtol=1e-7, atol=1e-12 * (1 + np.var(w)), equal_nan=True)


def test_band_powers_add_up_to_variance_for_a_tone():
    fs, n = 10_000.0, 4096
    t = np.arange(n) / fs
    x = 3.0 + 2.0 * np.sin(2 * np.pi * 1234.5 * t)
    row = spectral_indicators(x[None, :], fs, ((0.0, 1000.0), (1000.0, 1500.0), (1500.0, 5001.0)))[0]
    assert row[0] == pytest.approx(1234.5, abs=fs / n)
    assert row[3] == pytest.approx(2.0, rel=0.01)  # a sine of amplitude 2 has variance 2
    assert row[2] < 1e-3 and row[4] < 1e-3


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 5000), frame_length=st.integers(2, 600), hop=st.integers(1, 600))
def test_window_count_matches_framing(n, frame_length, hop):
    hop = min(hop, frame_length)
    x = np.arange(n, dtype=float)
    frames = frame(x, frame_length, hop)
    assert frames.shape[0] == n_windows(n, frame_length, hop)
    if frames.shape[0]:
        assert frames[-1, -1] <= n - 1 and frames[0, 0] == 0
        assert not frames.flags.writeable


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 3000), frame_length=st.integers(2, 300), hop=st.integers(1, 300),
       keep=st.lists(st.booleans(), max_size=60), shift=st.integers(0, 50))
def test_frame_at_starts_matches_a_slicing_loop(n, frame_length, hop, keep, shift):
    """frame(..., starts): the windows at any increasing starts (some skipped, some shifted past a
    break), as slicing x at each start gives them; a view when they are hop apart."""
    hop = min(hop, frame_length)
    x = np.random.default_rng(n).standard_normal(n)
    starts = window_starts(n, frame_length, hop)
    starts = starts[[k for k, on in zip(range(starts.shape[0]), keep) if on]] if keep else starts
    if starts.shape[0] and starts[-1] + shift + frame_length <= n:
        starts = np.concatenate([starts[: starts.shape[0] // 2], starts[starts.shape[0] // 2:] + shift])
    frames = frame(x, frame_length, hop, starts)
    expected = np.array([x[s:s + frame_length] for s in starts]).reshape(-1, frame_length)
    assert np.array_equal(frames, expected)
    if starts.shape[0] > 1 and np.all(np.diff(starts) == hop):
        assert np.shares_memory(frames, x)
    with pytest.raises(ValueError, match="outside the signal"):
        frame(x, frame_length, hop, np.array([n - frame_length + 1]))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(1, 6000), min_size=1, max_size=5),
       hop=st.sampled_from([128, 200, 256]))
def test_features_do_not_depend_on_chunking(seed, cuts, hop):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((6000, 2))
    params = FeatureSettings(frame_length=256, hop_length=hop, batch_windows=7, bands_hz=BANDS)
    kw = dict(sample_rate_hz=12_000.0, start=datetime(2026, 1, 1, tzinfo=timezone.utc), params=params,
              equipment_id="e", recording_id="r")
    whole = compute([x], ["a", "b"], **kw).table
    edges = sorted(set(cuts))
    pieces = np.split(x, edges)
    chunked = compute(pieces, ["a", "b"], **kw).table
    assert whole.height == 2 * n_windows(6000, 256, hop)
    cols = indicator_columns(params)
    time_cols = list(TIME_COLUMNS)
    np.testing.assert_allclose(chunked.select(time_cols).to_numpy(), whole.select(time_cols).to_numpy(), rtol=1e-9,
                               equal_nan=True)
    # spectra are float32 (features.SPECTRA_DTYPE): a window's rounding may differ with the batch it is
    # transformed in, by float32's last digits (2e-7 relative measured)
    np.testing.assert_allclose(chunked.select(cols).to_numpy(), whole.select(cols).to_numpy(), rtol=2e-6,
                               equal_nan=True)
    assert chunked["window_start"].to_list() == whole["window_start"].to_list()


def test_window_times_follow_sample_rate():
    x = np.zeros((1000, 1)) + np.random.default_rng(1).standard_normal((1000, 1))
    start = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
    params = FeatureSettings(frame_length=100, hop_length=50, bands_hz=BANDS)
    table = compute([x], ["a"], sample_rate_hz=1000.0, start=start, params=params, equipment_id="e",
                    recording_id="r").table
    assert table.height == n_windows(1000, 100, 50)
    first, second = table["window_start"][0], table["window_start"][1]
    assert (second - first).total_seconds() == pytest.approx(0.05)
    assert (table["window_end"][0] - first).total_seconds() == pytest.approx(0.1)
    assert first == start


def test_nan_windows_are_skipped_and_reported():
    x = np.random.default_rng(2).standard_normal((1000, 1))
    x[510:520, 0] = np.nan
    params = FeatureSettings(frame_length=100, hop_length=100, bands_hz=BANDS)
    res = compute([x], ["a"], sample_rate_hz=1000.0, start=datetime(2026, 1, 1, tzinfo=timezone.utc),
                  params=params, equipment_id="e", recording_id="r")
    assert res.table.height == 9
    assert 5 not in res.table["window_index"].to_list()
    assert any("10 NaN samples" in w for w in res.warnings)


def test_flat_and_clipped_counts():
    x = np.sin(np.linspace(0, 20 * np.pi, 2000))
    clipped = np.clip(x, -0.5, 0.5)
    c, f = flat_and_clipped(clipped)
    assert c > 0.5 * 2000 and f == 0
    flat = x.copy()
    flat[100:300] = 0.123
    c, f = flat_and_clipped(flat)
    assert f == 200 and c == 0
    assert flat_and_clipped(x) == (0, 0)


def test_streaming_decimation_matches_whole_signal_and_keeps_in_band_tones():
    from scipy.signal import firwin, lfilter

    from vibra.signal.resample import decimate_chunks

    fs, q = 48_000.0, 4
    t = np.arange(48_000) / fs
    x = np.column_stack([np.sin(2 * np.pi * 1000 * t) + 0.5 * np.sin(2 * np.pi * 9000 * t), np.cos(2 * np.pi * 300 * t)])
    whole = np.concatenate(list(decimate_chunks([x], q)))
    pieces = np.concatenate(list(decimate_chunks(np.array_split(x, [1001, 5003, 20000]), q)))
    np.testing.assert_allclose(pieces, whole, atol=1e-12)
    reference = lfilter(firwin(20 * q + 1, 0.8 / q), 1.0, x, axis=0)[::q]  # scipy in one go
    np.testing.assert_allclose(whole, reference, atol=1e-12)
    spec = np.abs(np.fft.rfft(whole[2000:, 0]))
    freqs = np.fft.rfftfreq(whole.shape[0] - 2000, q / fs)
    assert freqs[np.argmax(spec)] == pytest.approx(1000, abs=2)
    assert spec[np.argmin(np.abs(freqs - 3000))] < 1e-3 * spec.max()  # 9 kHz would alias to 3 kHz: filtered out
