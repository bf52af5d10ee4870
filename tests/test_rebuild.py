"""keep_raw and `vibra features rebuild`: the features table recomputed without (or with) the export."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from vibra.settings import load_settings
from vibra.storage import catalog, raw
from vibra.workspace import init_workspace
from vibra_pipelines import features, ingest, status, synth
from conftest import run_vibra

START = datetime(2026, 4, 1, tzinfo=timezone.utc)
KEYS = ["recording_id", "channel", "window_index"]


@pytest.fixture
def plant(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    source = tmp_path / "export"
    synth.run(source, n_equipment=2, days=0.5, seed=21, start=START, sensor_faults=False, workspace=ws)
    return ws, source


def _features(ws) -> pl.DataFrame:
    return pl.read_parquet(ws.lake / "features" / "*" / "*" / "*.parquet", hive_partitioning=False).sort(KEYS)


def _set(ws, text: str) -> None:
    ws.config_path.write_text(ws.config_path.read_text() + "\n" + text)


def test_keep_raw_stores_float32_waveforms_that_read_back(plant):
    ws, source = plant
    _set(ws, "")
    settings = load_settings(ws.config_path, {"VIBRA_INGEST_KEEP_RAW": "true"})
    assert settings.ingest.keep_raw
    ingest.run(ws, settings, source)
    files = sorted(ws.lake.glob("raw/date=*/equipment=*/part-*.parquet"))
    assert len(files) == 24
    meta = pq.ParquetFile(files[0]).metadata
    column = meta.row_group(0).column(0)
    assert str(meta.schema.column(0).physical_type) == "FLOAT"
    assert "BYTE_STREAM_SPLIT" in str(column.encodings) and column.compression == "ZSTD"
    info, chunks = raw.read(files[0])
    data = np.concatenate(list(chunks))
    src = pl.read_csv(info.source_path).to_numpy()
    np.testing.assert_allclose(data, src, rtol=1e-6, atol=1e-7)
    assert info.channels == ["x", "y"] and info.file_sample_rate_hz is None


def test_rebuild_from_source_equals_a_fresh_ingest_with_the_new_definition(plant, tmp_path):
    ws, source = plant
    ingest.run(ws, load_settings(ws.config_path, {}), source)
    before = _features(ws)
    new_bands = '[features]\nbands_hz = [[0, 1000], [1000, 3000]]\nframe_length = 2048\nhop_length = 1024\n'
    ws.config_path.write_text(ws.config_path.read_text().replace("[features]\n", new_bands, 1))
    settings = load_settings(ws.config_path, {})
    result = features.rebuild(ws, settings)
    assert result.recordings == 24 and result.from_source == 24 and result.kept_stale == 0
    after = _features(ws)
    assert "band_0_1000_hz" in after.columns and "band_0_500_hz" not in after.columns
    assert after.height == 24 * 2 * 11 != before.height  # (12800 - 2048) // 1024 + 1 = 11 windows
    fresh_ws, _ = init_workspace(tmp_path / "fresh")
    fresh_ws.config_path.write_text(ws.config_path.read_text())
    ingest.run(fresh_ws, load_settings(fresh_ws.config_path, {}), source)
    fresh = _features(fresh_ws)
    cols = [c for c in fresh.columns if c not in ("embedding", "iso_zone") and fresh[c].dtype == pl.Float64]
    np.testing.assert_allclose(after.select(cols).to_numpy(), fresh.select(cols).to_numpy(), rtol=1e-12,
                               equal_nan=True)
    st = status.run(ws)
    assert st["features_total"] == after.height
    n_windows = catalog.query(ws.catalog_path, "SELECT sum(n_windows) FROM recordings WHERE status = 'completed'")
    assert n_windows[0][0] == after.height
    hourly = pl.read_parquet(ws.lake / "hourly" / "*" / "*" / "*.parquet")
    assert hourly["n_windows"].sum() == after.height
    assert not (ws.data / ".rebuild").exists() or not any((ws.data / ".rebuild").iterdir())


def test_rebuild_from_raw_without_the_export(plant):
    ws, source = plant
    settings = load_settings(ws.config_path, {"VIBRA_INGEST_KEEP_RAW": "1"})
    ingest.run(ws, settings, source)
    before = _features(ws)
    shutil.rmtree(source)
    _set(ws, "")  # same definition: values must come back within float32 precision
    result = features.rebuild(ws, settings)
    assert result.from_raw == 24 and result.from_source == 0 and result.kept_stale == 0
    after = _features(ws)
    assert after.height == before.height
    for column in ("rms", "kurtosis", "peak", "velocity_rms_mm_s", "band_2000_4000_hz"):
        np.testing.assert_allclose(after[column], before[column], rtol=2e-5)


@pytest.mark.parametrize("compacted", [False, True])
def test_rebuild_keeps_rows_it_cannot_rebuild_and_says_why(plant, compacted):
    from vibra_pipelines import maintain

    ws, source = plant
    ingest.run(ws, load_settings(ws.config_path, {}), source)
    if compacted:  # the recording's rows now share one file with the others of its partition
        maintain.compact(ws, load_settings(ws.config_path, {}), tables=["features"])
    before = _features(ws)
    gone = sorted((source / "motor-01").iterdir())[0]
    gone.unlink()
    proc = run_vibra("features", "rebuild", "--json", "--home", str(ws.root))
    assert proc.returncode == 1
    payload = json.loads(proc.stdout)
    assert payload["kept_stale"] == 1 and payload["from_source"] == 23
    assert "source file is gone" in payload["problems"][str(gone)] and "keep_raw" in payload["problems"][str(gone)]
    after = _features(ws)
    assert after.height == before.height and after.select(KEYS).n_unique() == after.height


def test_rebuild_one_machine_leaves_the_others_alone(plant):
    ws, source = plant
    ingest.run(ws, load_settings(ws.config_path, {}), source)
    other = sorted(ws.lake.glob("features/date=*/equipment=pump-02/*.parquet"))
    stamps = {p: p.stat().st_mtime_ns for p in other}
    result = features.rebuild(ws, load_settings(ws.config_path, {}), ["motor-01"])
    assert result.recordings == 12
    assert {p: p.stat().st_mtime_ns for p in other} == stamps
