"""The envelope module (vibra.signal.envelope) against slow, obviously-correct twins (tests/naive.py)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

import naive
from vibra.signal import envelope, windows

FS, L = 12_000.0, 4096


def _modulated(seed: int, n: int = L) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FS
    return (1 + 0.8 * np.cos(2 * np.pi * 97 * t)) * np.sin(2 * np.pi * 2500 * t) + 0.1 * rng.standard_normal(n)


def test_whitening_is_the_cepstrum_zeroed_but_at_zero_quefrency():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(L) + np.sin(2 * np.pi * 150 * np.arange(L) / FS) * 20
    spec = np.fft.rfft(x)
    # the real cepstrum of the log magnitude, liftered to its zero-quefrency term, back to a spectrum
    cep = np.fft.irfft(np.log(np.abs(spec)), L)
    kept = np.zeros_like(cep)
    kept[0] = cep[0]
    reference = np.exp(np.fft.rfft(kept).real) * np.exp(1j * np.angle(spec))
    got = envelope.whiten(spec[None, :])[0]
    np.testing.assert_allclose(got * np.exp(cep[0]), reference, rtol=1e-9, atol=1e-12)
    assert np.allclose(np.abs(got), 1.0)
    assert envelope.whiten(np.zeros((1, 4), complex)).tolist() == [[0, 0, 0, 0]]


@pytest.mark.parametrize("band", [None, (1500.0, 4000.0)])
def test_squared_envelope_spectrum_matches_the_naive_twin(band):
    x = _modulated(1, 1024)
    freqs = np.fft.rfftfreq(1024, 1 / FS)
    got = envelope.squared_envelope_spectrum(np.fft.rfft(x)[None, :], freqs, band)[0]
    reference = naive.squared_envelope_spectrum(x, band, FS)
    np.testing.assert_allclose(got, reference, rtol=1e-6, atol=1e-6 * reference.max())
    assert abs(freqs[np.argmax(got[5:]) + 5] - 97) < 2 * FS / 1024  # the modulation line


def test_band_envelope_matches_the_naive_twin_at_its_own_instants():
    x = _modulated(2, 1024)
    from vibra.signal.indicators import window_spectra

    freqs, spec, _ = window_spectra(x[None, :], FS)
    band = (1500.0, 3500.0)
    got = np.abs(envelope.band_envelope(freqs, spec, band))[0]
    full = naive.band_envelope_magnitude(x, band, FS)
    step = 1024 // got.shape[0]  # the kernel's envelope is decimated by L / M …
    # … and is the inverse FFT of M undoubled bins: |z| = |analytic| · (L / M) / 2
    np.testing.assert_allclose(got, full[::step] * step / 2, rtol=1e-6, atol=1e-6 * full.max())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_line_ratio_matches_the_naive_twin(seed):
    rng = np.random.default_rng(seed)
    spectra = rng.exponential(size=(3, 700))
    spectra[:, 200] += 30.0
    for centre in (2.5, 4.07, 10.0, 36.7, 199.3, 200.0, 650.0, 690.0):
        got = envelope.line_ratio(spectra, centre)
        want = [naive.line_ratio(row, centre) for row in spectra]
        if want[0] is None:
            assert got is None, centre
        else:
            np.testing.assert_allclose(got, want, rtol=1e-12)
    assert envelope.line_ratio(spectra, 200.0).min() > 5  # the line stands out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_line_ratios_are_line_ratio_of_each_line_to_the_bit(seed):
    """The batched reading (issue 29: one median call per floor length) changes no value."""
    rng = np.random.default_rng(seed)
    spectra = rng.exponential(size=(4, 900)).astype(np.float32 if seed else np.float64)
    spectra[1, 300:320] = np.nan  # a row holding NaN keeps NaN where its floor does
    centres = list(rng.uniform(1.0, 899.0, 40)) + [2.5, 200.0, 200.0, 890.0]
    got = envelope.line_ratios(spectra, centres)
    for centre, g in zip(centres, got):
        want = envelope.line_ratio(spectra, centre)
        assert (g is None) == (want is None), centre
        if want is not None:
            assert g.dtype == want.dtype and np.array_equal(g, want, equal_nan=True), centre
    assert sum(g is None for g in got) >= 2  # lines that do not fit are there too
    assert envelope.line_ratios(spectra, []) == []


def test_the_batched_kurtogram_is_the_band_by_band_one():
    """spectral_kurtosis_band transforms bands of one decimated length together: same band, same value."""
    from vibra.signal.indicators import window_spectra

    x = np.stack([_modulated(s) for s in range(4)])
    freqs, spec, _ = window_spectra(x.astype(np.float32), FS)
    bands = envelope.candidate_bands(FS, 160.0, 29.95)
    assert len({1 << max(3, int(np.ceil(np.log2(np.searchsorted(freqs, hi) - np.searchsorted(freqs, lo)))))
                for lo, hi in bands}) >= 2  # several decimated lengths
    sks = []
    for band in bands:  # the reference: one band at a time, as written before the batching
        c = envelope.band_envelope(freqs, spec, band)
        m = c.shape[1]
        e2 = c[:, m // 4: 3 * m // 4].real ** 2 + c[:, m // 4: 3 * m // 4].imag ** 2
        sks.append(float(np.mean((e2 ** 2).mean(axis=1) / e2.mean(axis=1) ** 2 - 2.0)))
    best = int(np.argmax(sks))
    assert envelope.spectral_kurtosis_band(freqs, spec, bands) == (bands[best], sks[best])
    band, sk = envelope.spectral_kurtosis_band(freqs, spec, [])
    assert band is None and np.isnan(sk)


@pytest.mark.parametrize("m", [1, 2, 3, 5, 64, 1000, 4096, 4097])
def test_taper_is_scipys_tukey(m):
    # written out so that ingest need not import scipy.signal (~40 MB of RSS): it must stay scipy's window
    windows.tukey.cache_clear()
    assert np.array_equal(windows.tukey(m, envelope.TAPER), scipy.signal.windows.tukey(m, envelope.TAPER))


def test_hann_is_the_periodic_hann():
    assert np.allclose(windows.hann(8), scipy.signal.windows.hann(8, sym=False))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_median_rows_is_numpys_median_to_the_bit(dtype):
    rng = np.random.default_rng(7)
    for k in range(1, 50):
        a = (rng.standard_normal((6, k)) ** 2).astype(dtype)
        if k > 2:
            a[1, k // 2] = np.nan  # a NaN row gives NaN, as np.median does
            a[3, 0] = np.inf
        a[4] = 0.25  # ties
        expected = np.median(a, axis=1)
        got = envelope.median_rows(a)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


def test_envelope_amplitude_spectrum_is_in_the_signals_units():
    # A·(1 + m·cos 2π f_m t)·sin 2π f_c t: the envelope's line at f_m is A·m (0-peak), in the signal's units
    fs, n, a, m, fm = 12_000.0, 8192, 0.5, 0.4, 105.0
    t = np.arange(4 * n) / fs
    x = a * (1 + m * np.cos(2 * np.pi * fm * t)) * np.sin(2 * np.pi * 3000 * t)
    freqs, amp = envelope.envelope_amplitude_spectrum(x.reshape(4, n), fs, (2000.0, 4000.0))
    k = int(np.argmax(amp[5:]) + 5)
    assert abs(freqs[k] - fm) < fs / n and amp[k] == pytest.approx(a * m, rel=0.2)  # measured 0.187 for 0.2 (Hann scalloping, off-bin)
    assert amp[k - 1:k + 2].max() == pytest.approx(a * m, rel=0.2)
