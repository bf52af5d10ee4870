"""Inputs read right or refused (issue 14, item 4): one test per hostile input that used to pass
silently or be refused wrongly. Each failed on the code before the fix."""

from __future__ import annotations

import struct
import warnings
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibra.errors import ConfigError, InputError
from vibra.ingest.features import compute
from vibra.readers import open_recording
from vibra.settings import Equipment, FeatureSettings, load_settings
from vibra.storage import catalog
from vibra.workspace import init_workspace

from vibra_pipelines import ingest

EQ = Equipment("pump-1")
START = datetime(2026, 3, 1, 5, tzinfo=timezone.utc)


def _all(rec) -> np.ndarray:
    return np.concatenate(list(rec.chunks))


def _workspace(tmp_path, toml: str = ""):
    ws, _ = init_workspace(tmp_path / "ws")
    if toml:
        ws.config_path.write_text(ws.config_path.read_text() + "\n" + toml)
    source = tmp_path / "export"
    (source / "pump-1").mkdir(parents=True)
    return ws, source


def _ledger(ws) -> dict[str, tuple]:
    rows = catalog.query(ws.catalog_path, "SELECT source_path, status, error, warnings FROM recordings")
    return {r[0].rsplit("/", 1)[-1]: r[1:] for r in rows}


def _seconds_csv(path, t, x):
    lines = ["time,x"] + [f"{a:.9f},{b:.6f}" for a, b in zip(t, x)]
    path.write_text("\n".join(lines) + "\n")


# --- BOM ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [True, False])
def test_utf8_bom_is_stripped(tmp_path, header):
    """Excel's "CSV UTF-8" starts with a BOM: it used to turn `time` into a channel named '\\ufefftime'
    (and break the first number of a headerless file)."""
    x = np.sin(np.arange(3000) / 7.0)
    rows = (["time,x"] if header else []) + [f"{i / 1000:.3f},{v:.6f}" for i, v in enumerate(x)]
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + ("\n".join(rows) + "\n").encode())
    eq = EQ if header else Equipment("pump-1", channels=("time", "x"))
    rec = open_recording(path, eq)
    assert rec.channels == ["x"]
    assert rec.sample_rate_hz == pytest.approx(1000.0)
    np.testing.assert_allclose(_all(rec)[:, 0], x, atol=1e-6)


# --- inf / 1e400 -------------------------------------------------------------------------------

def test_inf_samples_are_counted_warned_and_their_window_skipped(tmp_path):
    """`inf` and `1e400` (parsed as inf) used to enter the windows silently and make rms NaN."""
    ws, source = _workspace(tmp_path, "[equipment.pump-1]\nsample_rate_hz = 4096\n")
    x = np.random.default_rng(0).standard_normal(4096 * 3)
    text = [f"{v:.6f}" for v in x]
    text[100], text[5000] = "inf", "1e400"  # windows 0 and 1
    (source / "pump-1" / "a_2026-03-01T05-00-00.csv").write_text("x\n" + "\n".join(text) + "\n")
    result = ingest.run(ws, load_settings(ws.config_path, {}), source)
    assert result.new == 1 and result.windows == 1
    status, _, warns = _ledger(ws)["a_2026-03-01T05-00-00.csv"]
    assert status == "completed"
    assert any("2 infinite" in w and "2 window(s) skipped" in w for w in warns), warns
    feats = pl.read_parquet(ws.lake / "features" / "*" / "*" / "*.parquet")
    assert feats["window_index"].to_list() == [2] and feats["rms"].is_finite().all()
    hourly = pl.read_parquet(ws.lake / "hourly" / "*" / "*" / "*.parquet")
    assert hourly["rms_mean"].is_finite().all()


# --- time columns ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, expect", [
    ("reversed", "goes backward 2999 time(s), first at row 2"),
    ("shuffled", "goes backward"),
    ("duplicate", "repeats a value 1 time(s), first at row 1001"),
])
def test_disordered_time_column_is_warned(tmp_path, kind, expect):
    t = np.arange(3000) / 1000.0
    if kind == "reversed":
        t = t[::-1]
    elif kind == "shuffled":
        t = np.random.default_rng(1).permutation(t)
    else:
        t = np.concatenate([t[:1000], t[999:2999]])
    path = tmp_path / f"{kind}.csv"
    _seconds_csv(path, t, np.zeros(3000))
    rec = open_recording(path, EQ, chunk_rows=4096)
    _all(rec)
    assert any(expect in w for w in rec.warnings), rec.warnings


def test_time_gap_splits_windows_and_keeps_true_times(tmp_path):
    """A 1-hour hole inside a file used to pass without a word, windows spanning it and later windows
    stamped an hour early."""
    ws, source = _workspace(tmp_path)
    fs = 1000.0
    t = np.concatenate([np.arange(5000), 3_605_000 + np.arange(5000)]) / fs  # 5 s, a 1 h gap, 5 s
    stamps = [(START + timedelta(seconds=float(s))).isoformat(timespec="microseconds") for s in t]
    x = np.random.default_rng(2).standard_normal(t.shape[0])
    path = source / "pump-1" / "gap.csv"
    path.write_text("timestamp,x\n" + "\n".join(f"{s},{v:.6f}" for s, v in zip(stamps, x)) + "\n")
    settings = load_settings(ws.config_path, {"VIBRA_FEATURES_FRAME_LENGTH": "1024",
                                              "VIBRA_FEATURES_HOP_LENGTH": "1024"})
    result = ingest.run(ws, settings, source)
    assert result.new == 1
    status, _, warns = _ledger(ws)["gap.csv"]
    assert any("1 gap(s), first at row 5001 (3600 s)" in w for w in warns), warns
    feats = pl.read_parquet(ws.lake / "features" / "*" / "*" / "*.parquet").sort("window_index")
    starts = [(s - START).total_seconds() for s in feats["window_start"].to_list()]
    ends = [(s - START).total_seconds() for s in feats["window_end"].to_list()]
    # windows 0..3 before the gap (4 × 1.024 s), window 4 (samples 4096..5119) spans it: dropped,
    # windows 5..8 after it at their true times (sample 5120 is 120 ms after the gap's end)
    assert feats["window_index"].to_list() == [0, 1, 2, 3, 5, 6, 7, 8]
    assert all(e <= 5.0 for e, s in zip(ends, starts) if s < 5.0)
    assert starts[4] == pytest.approx(3605.120, abs=1e-6)
    # `vibra features rebuild` from the source file respects the gap the same way
    from vibra_pipelines import features as features_stage

    features_stage.rebuild(ws, settings)
    again = pl.read_parquet(ws.lake / "features" / "*" / "*" / "*.parquet").sort("window_index")
    assert again["window_index"].to_list() == feats["window_index"].to_list()
    assert again["window_start"].to_list() == feats["window_start"].to_list()


def test_time_gap_kept_with_the_raw_waveform(tmp_path):
    """With keep_raw, a rebuild from the lake's raw waveform (no export) respects the gap too."""
    ws, source = _workspace(tmp_path)
    t = np.concatenate([np.arange(5000), 20_000 + np.arange(5000)]) / 1000.0
    path = source / "pump-1" / "gap_2026-03-01T05-00-00.csv"
    _seconds_csv(path, t, np.random.default_rng(4).standard_normal(t.shape[0]))
    env = {"VIBRA_FEATURES_FRAME_LENGTH": "1024", "VIBRA_FEATURES_HOP_LENGTH": "1024", "VIBRA_INGEST_KEEP_RAW": "1"}
    settings = load_settings(ws.config_path, env)
    ingest.run(ws, settings, source)
    feats = pl.read_parquet(ws.lake / "features" / "*" / "*" / "*.parquet").sort("window_index")
    assert 4 not in feats["window_index"].to_list()  # samples 4096..5119 span the gap
    path.unlink()  # the export is gone: only the raw waveform remains
    from vibra_pipelines import features as features_stage

    assert features_stage.rebuild(ws, settings).from_raw == 1
    again = pl.read_parquet(ws.lake / "features" / "*" / "*" / "*.parquet").sort("window_index")
    assert again["window_index"].to_list() == feats["window_index"].to_list()
    assert again["window_start"].to_list() == feats["window_start"].to_list()


def test_time_gap_refused_by_setting(tmp_path):
    ws, source = _workspace(tmp_path)
    t = np.concatenate([np.arange(5000), 10_000 + np.arange(5000)]) / 1000.0
    _seconds_csv(source / "pump-1" / "gap.csv", t, np.zeros(t.shape[0]))
    result = ingest.run(ws, load_settings(ws.config_path, {"VIBRA_INGEST_ON_TIME_GAP": "refuse"}), source)
    assert result.failed == 1 and result.new == 0
    status, error, _ = _ledger(ws)["gap.csv"]
    assert status == "failed"
    assert "gap.csv: time column jumps 5.001 s (a gap) at row 5001" in error and "on_time_gap" in error


# --- sample rate from the time column ----------------------------------------------------------

def test_microsecond_rounded_stamps_give_the_true_rate(tmp_path):
    """12800 Hz stamped to the µs (78 or 79 µs apart) used to read as 12820.5 Hz."""
    stamps = [(START + timedelta(microseconds=round(i * 1e6 / 12800))).isoformat() for i in range(20_000)]
    path = tmp_path / "us.csv"
    path.write_text("timestamp,x\n" + "\n".join(f"{s},0.5" for s in stamps) + "\n")
    rec = open_recording(path, EQ)
    assert rec.sample_rate_hz == 12800.0
    _all(rec)
    assert not any("gap" in w or "repeats" in w for w in rec.warnings), rec.warnings


def test_time_column_close_to_configured_rate_uses_configured(tmp_path):
    path = tmp_path / "near.csv"
    _seconds_csv(path, np.arange(20_000) / 12_825.0, np.zeros(20_000))  # 0.2 % above 12800
    rec = open_recording(path, Equipment("pump-1", sample_rate_hz=12_800.0))
    assert rec.sample_rate_hz == 12_800.0
    assert any("12825 Hz, 0.20 % from the configured 12800 Hz" in w for w in rec.warnings), rec.warnings


def test_time_column_far_from_configured_rate_is_refused(tmp_path):
    path = tmp_path / "far.csv"
    _seconds_csv(path, np.arange(20_000) / 25_600.0, np.zeros(20_000))
    with pytest.raises(InputError, match=r"far.csv: time column gives 25600 Hz but \[equipment.pump-1\] "
                                         r"sample_rate_hz = 12800 \(100.0 % apart\); correct sample_rate_hz"):
        open_recording(path, Equipment("pump-1", sample_rate_hz=12_800.0))


# --- extra fields ------------------------------------------------------------------------------

def test_row_with_extra_fields_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "extra.csv"
    path.write_text("a,b\n1,2\n3,4\n5,6,7\n8,9\n")
    with pytest.raises(InputError, match=r"extra.csv: line 4 has 3 fields but the file has 2 columns"):
        _all(open_recording(path, EQ))
    trailing = tmp_path / "trailing.csv"  # an empty trailing field loses nothing: still read
    trailing.write_text("a,b\n1,2,\n3,4,\n")
    assert _all(open_recording(trailing, EQ)).tolist() == [[1.0, 2.0], [3.0, 4.0]]


# --- 24-bit WAV --------------------------------------------------------------------------------

def _wav24(path, rate: int, samples: np.ndarray) -> None:
    """A 24-bit PCM WAV written byte by byte (scipy cannot write one)."""
    n, ch = samples.shape
    raw = samples.astype("<i4").reshape(-1)
    data = b"".join(int(v).to_bytes(3, "little", signed=True) for v in raw)
    fmt = struct.pack("<HHIIHH", 1, ch, rate, rate * ch * 3, ch * 3, 24)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_24_bit_pcm_wav_is_read(tmp_path):
    """It used to be refused: "mmap=True not compatible with 3-byte container size"."""
    pcm = (np.column_stack([np.sin(np.arange(4000) / 5.0), np.cos(np.arange(4000) / 3.0)]) * 8_000_000).astype(int)
    path = tmp_path / "a.wav"
    _wav24(path, 48_000, pcm)
    rec = open_recording(path, EQ, chunk_rows=1000)
    assert rec.sample_rate_hz == 48_000 and rec.channels == ["ch0", "ch1"]
    np.testing.assert_array_equal(_all(rec), pcm / 2.0 ** 23)


# --- numpy overflow ----------------------------------------------------------------------------

def test_overflow_is_a_per_file_warning_not_stderr(tmp_path):
    """Samples near 1e200 overflow x² and the spectra: numpy used to print RuntimeWarnings and the
    windows carried NaN/inf indicators."""
    x = np.random.default_rng(3).standard_normal((4096 * 3, 1))
    x[4096:8192] *= 1e200
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any numpy RuntimeWarning fails the test
        result = compute([x], ["x"], sample_rate_hz=4096.0, start=START, params=FeatureSettings(),
                         equipment_id="pump-1", recording_id="r" * 64)
    assert result.table["window_index"].to_list() == [0, 2]
    assert result.table["rms"].is_finite().all()
    assert any("1 window(s) skipped: values so large" in w for w in result.warnings), result.warnings


# --- settings ----------------------------------------------------------------------------------

@pytest.mark.parametrize("env, toml, expect", [
    ({"VIBRA_INGEST_LOCK_TIMEOUT_S": "nan"}, "", "environment VIBRA_INGEST_LOCK_TIMEOUT_S: ingest.lock_timeout_s = "
                                                 "'nan': not a finite number; must be a number in 0..86400"),
    ({}, "[anomaly]\nseed = 1\n[forecast]\nhorizon_h = inf\n", "forecast.horizon_h = inf: not a finite number"),
    ({}, "[equipment.p]\nfiles = [{ glob = \"*.csv\", sample_rate_hz = nan }]\n", "sample_rate_hz = nan: not a finite number"),
])
def test_nan_and_inf_refused_in_numeric_settings(tmp_path, env, toml, expect):
    path = tmp_path / "vibra.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env)
    assert expect in str(info.value)


def test_unknown_vibra_environment_name_is_warned(tmp_path):
    settings = load_settings(None, {"VIBRA_INGEST_LOCK_TIMEOUT": "5", "VIBRA_HOME": "/x", "PATH": "/bin"})
    assert settings.warnings == ("environment variable VIBRA_INGEST_LOCK_TIMEOUT is not a vibra setting and is "
                                 "ignored; did you mean VIBRA_INGEST_LOCK_TIMEOUT_S?",)
    assert settings.ingest.lock_timeout_s == 3600.0


def test_cli_prints_unknown_environment_name_on_stderr(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from vibra_cli.main import app

    ws, _ = init_workspace(tmp_path / "ws")
    monkeypatch.setenv("VIBRA_INGEST_MAX_CONCURENT_FILES", "4")
    result = CliRunner().invoke(app, ["status", "--home", str(ws.root), "--json"])
    assert result.exit_code == 0, result.output
    assert "did you mean VIBRA_INGEST_MAX_CONCURRENT_FILES?" in result.stderr
    assert "VIBRA_INGEST_MAX_CONCURENT_FILES" not in result.stdout


# --- property: the time check finds exactly the gaps put in, however the column is chunked ---------

@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=5, max_size=300), st.integers(1, 50), st.sampled_from([100.0, 12_800.0]))
def test_time_check_finds_every_gap_whatever_the_chunks(missing, chunk, rate_hz):
    """Each entry of ``missing`` is how many samples are absent before that row (0: none)."""
    from vibra.readers.timestamps import TimeCheck

    index = np.cumsum(np.asarray(missing) + 1) - 1  # sample numbers actually present
    seconds = np.round(index / rate_hz, 6)  # stamps rounded to the µs, as ISO text is
    gaps: list = []
    check = TimeCheck("f.csv", rate_hz, "split", gaps)
    for start in range(0, seconds.shape[0], chunk):
        check.feed(seconds[start:start + chunk])
    expected = [(row, m / rate_hz) for row, m in enumerate(missing) if m and row > 0]
    assert [g[0] for g in gaps] == [e[0] for e in expected]
    np.testing.assert_allclose([g[1] for g in gaps], [e[1] for e in expected], atol=2e-6)
    assert check.backward == 0 and check.repeated == 0
