"""Every reader, on files written here and on real CWRU / FEMTO files."""

from __future__ import annotations

import gzip
from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest
import scipy.io
import scipy.io.wavfile

from vibra.errors import InputError
from vibra.readers import format_of, open_recording
from vibra.readers.timestamps import from_filename
from vibra.equipment import Equipment

EQ = Equipment("pump-1")


def _all(rec) -> np.ndarray:
    return np.concatenate(list(rec.chunks))


def test_csv_with_header_and_seconds_time_column(tmp_path):
    fs = 2000.0
    t = np.arange(5000) / fs
    x = np.sin(2 * np.pi * 50 * t)
    path = tmp_path / "a.csv"
    pl.DataFrame({"time": t, "ch1": x, "ch2": -x}).write_csv(path, float_precision=9)
    rec = open_recording(path, EQ, chunk_rows=1000)
    assert rec.channels == ["ch1", "ch2"]
    assert rec.sample_rate_hz == pytest.approx(fs)
    assert rec.start is None
    data = _all(rec)
    assert data.shape == (5000, 2)
    np.testing.assert_allclose(data[:, 0], x, atol=1e-8)


def test_csv_with_absolute_timestamps(tmp_path):
    path = tmp_path / "b.csv"
    stamps = [f"2026-02-03T04:05:{s:02d}.{ms:03d}Z" for s in range(2) for ms in range(0, 1000, 10)]
    lines = ["timestamp,acc"] + [f"{s},{i * 0.01}" for i, s in enumerate(stamps)]
    path.write_text("\n".join(lines) + "\n")
    rec = open_recording(path, EQ, chunk_rows=64)
    assert rec.start == datetime(2026, 2, 3, 4, 5, 0, tzinfo=timezone.utc)
    assert rec.sample_rate_hz == pytest.approx(100.0)
    assert _all(rec).shape == (200, 1)


def test_headerless_csv_uses_equipment_channels(tmp_path):
    path = tmp_path / "femto_like.csv"
    rows = [f"9,38,{i // 100},{i},{0.1 * i:.3f},{-0.2 * i:.3f}" for i in range(300)]
    path.write_text("\n".join(rows) + "\n")
    eq = Equipment("bearing1", channels=("-", "-", "-", "-", "horizontal", "vertical"))
    rec = open_recording(path, eq, chunk_rows=100)
    assert rec.channels == ["horizontal", "vertical"]
    data = _all(rec)
    assert data.shape == (300, 2)
    assert data[10, 1] == pytest.approx(-2.0)
    rec = open_recording(path, EQ, chunk_rows=100)
    assert rec.channels[0] == "ch0" and any("headerless" in w for w in rec.warnings)


def test_plain_csv_streams_in_bounded_chunks(tmp_path, monkeypatch):
    import vibra.readers.csv as csv_reader

    monkeypatch.setattr(csv_reader, "MIN_BLOCK_BYTES", 1 << 16)
    path = tmp_path / "big.csv"
    x = np.random.default_rng(3).standard_normal(300_000)
    pl.DataFrame({"x": x, "y": -x}).write_csv(path, float_precision=12)
    rec = open_recording(path, EQ, chunk_rows=4096)  # 4096 rows × ~32 bytes ≈ 128 kB blocks
    chunks = list(rec.chunks)
    assert len(chunks) >= 50 and max(c.shape[0] for c in chunks) <= 6000
    np.testing.assert_allclose(np.concatenate(chunks), np.column_stack([x, -x]), atol=1e-11)


def test_missing_value_spellings_are_nan(tmp_path):
    path = tmp_path / "na.csv"
    path.write_text("a,b\n1,2\nNA,3\n,4\nnan,N/A\nnull,5\n")
    data = _all(open_recording(path, EQ))
    assert np.isnan(data[:, 0]).tolist() == [False, True, True, True, True]
    assert np.isnan(data[:, 1]).tolist() == [False, False, False, True, False]


def test_gzip_csv_streams(tmp_path):
    path = tmp_path / "c.csv.gz"
    x = np.random.default_rng(0).standard_normal(20_000)
    path.write_bytes(gzip.compress(pl.DataFrame({"x": x}).write_csv(float_precision=12).encode()))
    rec = open_recording(path, EQ, chunk_rows=3000)
    chunks = list(rec.chunks)
    np.testing.assert_allclose(np.concatenate(chunks)[:, 0], x, atol=1e-11)


def test_parquet_reader(tmp_path):
    path = tmp_path / "d.parquet"
    x = np.random.default_rng(1).standard_normal(10_000)
    pl.DataFrame({"t": np.arange(10_000) / 5000.0, "acc_x": x, "label": ["a"] * 10_000}).write_parquet(
        path, row_group_size=2500)
    rec = open_recording(path, EQ, chunk_rows=1000)
    assert rec.channels == ["acc_x"] and rec.sample_rate_hz == pytest.approx(5000.0)
    assert any("label" in w for w in rec.warnings)
    np.testing.assert_array_equal(_all(rec)[:, 0], x)


def test_wav_reader_scales_pcm(tmp_path):
    path = tmp_path / "e.wav"
    pcm = (np.sin(np.linspace(0, 100, 8000)) * 16000).astype(np.int16)
    scipy.io.wavfile.write(path, 8000, np.column_stack([pcm, pcm // 2]))
    rec = open_recording(path, EQ, chunk_rows=1000)
    assert rec.sample_rate_hz == 8000 and rec.channels == ["ch0", "ch1"]
    data = _all(rec)
    np.testing.assert_allclose(data[:, 0], pcm / 32768.0)


def test_generic_mat_reader(tmp_path):
    path = tmp_path / "f.mat"
    x = np.arange(1000.0)
    scipy.io.savemat(path, {"accel": x[:, None], "rpm": 1500.0, "fs": 2000.0})
    rec = open_recording(path, EQ, chunk_rows=300)
    assert rec.channels == ["accel"] and rec.rpm == 1500.0 and rec.sample_rate_hz == 2000.0
    np.testing.assert_array_equal(_all(rec)[:, 0], x)


def test_real_cwru_mat_file(real_data):
    path = real_data / "cwru_12k_de" / "IR007_0.mat"
    rec = open_recording(path, Equipment("cwru", sample_rate_hz=12_000.0), chunk_rows=50_000)
    assert rec.channels == ["BA", "DE", "FE"]
    assert rec.rpm == 1797.0  # X105RPM
    data = _all(rec)
    raw = scipy.io.loadmat(path)
    assert data.shape == (121265, 3)
    np.testing.assert_array_equal(data[:, 1], raw["X105_DE_time"].ravel())


def test_real_cwru_normal_file_has_no_base_channel(real_data):
    rec = open_recording(real_data / "cwru_12k_de" / "Normal_0.mat", EQ, chunk_rows=100_000)
    assert rec.channels == ["DE", "FE"] and rec.rpm == 1796.0
    assert _all(rec).shape == (243938, 2)


def test_real_femto_headerless_csv(real_data):
    path = real_data / "femto_bearing1_1" / "acc_00001.csv"
    eq = Equipment("bearing1_1", sample_rate_hz=25_600.0, channels=("-", "-", "-", "-", "horizontal", "vertical"))
    rec = open_recording(path, eq, chunk_rows=1000)
    data = _all(rec)
    assert data.shape == (2560, 2)
    # snapshot_features.csv (derived by numpy over the same file) gives rms_h = 0.562 g for snapshot 1
    assert np.sqrt(np.mean(data[:, 0] ** 2)) == pytest.approx(0.562, abs=5e-4)


@pytest.mark.parametrize("name, when", [
    ("pump_2026-01-05T13-20-00.csv", datetime(2026, 1, 5, 13, 20, 0, tzinfo=timezone.utc)),
    ("x_20260105_132001.csv.gz", datetime(2026, 1, 5, 13, 20, 1, tzinfo=timezone.utc)),
    ("2004.02.12.10.32.39", datetime(2004, 2, 12, 10, 32, 39, tzinfo=timezone.utc)),
    ("rec 2026-01-05 13:20:02.parquet", datetime(2026, 1, 5, 13, 20, 2, tzinfo=timezone.utc)),
    ("acc_00001.csv", None),
    ("bad_2026-13-45T99-00-00.csv", None),
])
def test_timestamp_from_filename(name, when):
    assert from_filename(name) == when


@pytest.mark.parametrize("content, reason", [
    (b"", "empty"),
    (b"time,x\n", "header only"),
    (b"x,y\n1,2\n3,abc\n", "column 'y' has text at row 2 ('abc')"),
    (b"\x00\x01\x02garbage\xff\xfe", "binary content"),
])
def test_bad_csv_reasons(tmp_path, content, reason):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=str(path)) as info:
        open_recording(path, EQ)
        rec = open_recording(path, EQ)
        list(rec.chunks)
    assert reason in str(info.value)


@pytest.mark.parametrize("gz", [False, True])
def test_text_in_late_row_is_found_while_streaming(tmp_path, monkeypatch, gz):
    import vibra.readers.csv as csv_reader

    monkeypatch.setattr(csv_reader, "MIN_BLOCK_BYTES", 1 << 16)  # many blocks: row numbers must add up
    path = tmp_path / ("late.csv.gz" if gz else "late.csv")
    rows = ["a,b"] + [f"{i},{i}" for i in range(500_000)] + ["1,n/a?"]
    text = ("\n".join(rows) + "\n").encode()
    path.write_bytes(gzip.compress(text) if gz else text)
    rec = open_recording(path, EQ, chunk_rows=4096)  # the first block parses fine
    with pytest.raises(InputError, match=r"column 'b' has text at row 500001 \('n/a\?'\)"):
        list(rec.chunks)


def test_truncated_gzip(tmp_path):
    path = tmp_path / "t.csv.gz"
    payload = gzip.compress(("x\n" + "\n".join(str(i) for i in range(200_000)) + "\n").encode())
    path.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(InputError, match="truncated or corrupt gzip"):
        rec = open_recording(path, EQ)
        list(rec.chunks)


def test_unknown_extension(tmp_path):
    path = tmp_path / "x.xlsx"
    path.write_bytes(b"PK")
    assert format_of(path) is None
    with pytest.raises(InputError, match="unknown file type '.xlsx'"):
        open_recording(path, EQ)
