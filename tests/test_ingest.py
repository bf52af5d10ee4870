"""Ingest: idempotent reruns, duplicates, bad files isolated, concurrency, lake layout."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
import time
from datetime import datetime, timezone

import duckdb
import numpy as np
import polars as pl
import pytest

from vibra.settings import load_settings
from vibra.storage import catalog, lake
from vibra.workspace import init_workspace

from vibra_pipelines import ingest, status, synth
from conftest import run_vibra, vibra_exe

START = datetime(2026, 3, 1, tzinfo=timezone.utc)


@pytest.fixture
def plant(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    source = tmp_path / "export"
    synth.run(source, n_equipment=2, days=0.25, seed=11, start=START, sensor_faults=False, workspace=ws)
    return ws, source


def _settings(ws):
    return load_settings(ws.config_path, {})


def _lake_snapshot(ws) -> dict[str, str]:
    return {str(p.relative_to(ws.lake)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(ws.lake.rglob("*")) if p.is_file()}


def _ledger(ws):
    return catalog.query(ws.catalog_path, "SELECT source_path, recording_id, status, n_windows, ingested_at "
                                          "FROM recordings ORDER BY source_path, recording_id")


def test_ingest_then_rerun_changes_nothing(plant):
    ws, source = plant
    first = ingest.run(ws, _settings(ws), source)
    assert first.new == 12 and first.failed == 0 and first.skipped == 0
    # 12800 samples per channel / 4096 = 3 windows, 2 channels
    assert first.windows == 12 * 3 * 2
    lake_before, ledger_before = _lake_snapshot(ws), _ledger(ws)
    second = ingest.run(ws, _settings(ws), source)
    assert (second.new, second.skipped, second.duplicates, second.failed) == (0, 12, 0, 0)
    assert _lake_snapshot(ws) == lake_before
    assert _ledger(ws) == ledger_before


def test_lake_layout_and_duckdb_hive_read(plant):
    ws, source = plant
    ingest.run(ws, _settings(ws), source)
    files = sorted(ws.lake.glob("features/date=*/equipment=*/part-*.parquet"))
    assert files and all(p.parent.name.startswith("equipment=") for p in files)
    con = duckdb.connect()
    n, eqs = con.execute(f"SELECT count(*), count(DISTINCT equipment) FROM read_parquet("
                         f"'{ws.lake}/features/*/*/*.parquet', hive_partitioning = true)").fetchone()
    assert n == status.run(ws)["features_total"] == 72 and eqs == 2
    row = con.execute(f"SELECT equipment, equipment_id, date, CAST(window_start AS DATE) FROM read_parquet("
                      f"'{ws.lake}/features/*/*/*.parquet', hive_partitioning = true) LIMIT 1").fetchone()
    assert row[0] == row[1] and str(row[2]) == str(row[3])
    hourly = pl.read_parquet(ws.lake / "hourly" / "*" / "*" / "*.parquet")
    assert hourly["n_windows"].sum() == 72
    assert {"rms_mean", "rms_max", "rms_p95", "kurtosis_p95"} <= set(hourly.columns)
    # hourly means equal the mean over the windows of each hour
    feats = pl.read_parquet(ws.lake / "features" / "*" / "*" / "*.parquet", hive_partitioning=False)
    check = feats.group_by("equipment_id", "channel", pl.col("window_start").dt.truncate("1h").alias("hour")).agg(
        pl.col("rms").mean().alias("want"))
    joined = hourly.join(check, on=["equipment_id", "channel", "hour"])
    assert joined.height == hourly.height
    np.testing.assert_allclose(joined["rms_mean"], joined["want"], rtol=1e-12)


def test_copy_under_another_name_is_a_duplicate(plant):
    ws, source = plant
    ingest.run(ws, _settings(ws), source)
    original = sorted((source / "motor-01").iterdir())[0]
    shutil.copy(original, source / "motor-01" / ("copy_of_" + original.name))
    again = ingest.run(ws, _settings(ws), source)
    assert (again.new, again.duplicates) == (0, 1)
    st = status.run(ws)
    assert st["duplicates"] == 1 and st["features_total"] == 72


def test_touched_file_is_rehashed_and_rewritten_in_place_not_duplicated(plant):
    """A new mtime with the same bytes: ingest reads the file again (``new == 1``), finds the same
    content, and rewrites its windows in place: no duplicate recording, no extra windows."""
    ws, source = plant
    ingest.run(ws, _settings(ws), source)
    path = sorted((source / "motor-01").glob("*.csv"))[0]
    stat = path.stat()
    path.touch()  # same bytes, new mtime: hashed again, same recording, nothing new
    again = ingest.run(ws, _settings(ws), source)
    assert again.new == 1 and again.duplicates == 0  # re-verified and rewritten in place (same content)
    assert status.run(ws)["features_total"] == 72
    assert path.stat().st_mtime != stat.st_mtime


BAD_FILES = {
    "empty.csv": (b"", "file is empty"),
    "header_only.csv": (b"x,y\n", "header only"),
    "text.csv": (b"x,y\n0.1,0.2\n0.3,oops\n", "column 'y' has text at row 2 ('oops')"),
    "garbage.csv": (bytes(range(256)) * 4, "binary content"),
    "cut.csv.gz": (gzip.compress(("x\n" + "\n".join(map(str, range(100_000)))).encode())[:5000],
                   "truncated or corrupt gzip"),
    "notes.xlsx": (b"PK\x03\x04", "unknown file type '.xlsx'"),
    "short.csv": (b"x\n" + b"0.1\n" * 100, "shorter than one window (100 samples < frame_length 4096)"),
    "garbage.parquet": (b"PAR1 not really", "not a readable Parquet file"),
    "garbage.mat": (b"MATLAB 5.0 nonsense", "not a readable MATLAB v5 file"),
    "garbage.wav": (b"RIFF\x00\x00", "not a readable WAV file"),
}


def test_bad_files_fail_with_reasons_and_good_files_land(plant):
    ws, source = plant
    bad_dir = source / "motor-01" / "bad"
    bad_dir.mkdir()
    for name, (content, _) in BAD_FILES.items():
        (bad_dir / name).write_bytes(content)
    unsafe = source / "bad name!"
    unsafe.mkdir()
    (unsafe / "a.csv").write_text("x\n1\n")
    norate = source / "norate-9"
    norate.mkdir()
    (norate / "r.csv").write_text("x\n" + "0.1\n" * 5000)
    result = ingest.run(ws, _settings(ws), source)
    assert result.new == 12
    assert result.failed == len(BAD_FILES) + 2
    for name, (_, reason) in BAD_FILES.items():
        got = result.failures[str(bad_dir / name)]
        assert reason in got and str(bad_dir / name) in got
    assert "is not a safe id" in result.failures[str(unsafe / "a.csv")]
    assert "unknown sample rate" in result.failures[str(norate / "r.csv")]
    st = status.run(ws)
    assert st["failed"] == len(BAD_FILES) + 2 and st["completed"] == 12 and st["features_total"] == 72
    errors = catalog.query(ws.catalog_path, "SELECT error FROM recordings WHERE status = 'failed'")
    assert all(e[0] and "\n" not in e[0] for e in errors)
    # nothing half-written, and a rerun leaves the failures alone
    assert not list(ws.lake.rglob(".*tmp-*"))
    again = ingest.run(ws, _settings(ws), source)
    assert (again.new, again.failed) == (0, 0)


def test_nan_flatline_clipping_are_warnings(plant):
    ws, source = plant
    rng = np.random.default_rng(5)
    x = rng.standard_normal(20_000)
    x[5000:5100] = np.nan
    flat = x.copy()
    flat[:5000] = 0.25
    clipped = np.clip(rng.standard_normal(20_000), -1.0, 1.0)
    folder = source / "motor-01"
    pl.DataFrame({"a": x}).write_csv(folder / "nan_2026-03-01T05-00-00.csv", null_value="")
    pl.DataFrame({"a": flat}).write_csv(folder / "flat_2026-03-01T05-10-00.csv")
    pl.DataFrame({"a": clipped}).write_csv(folder / "clip_2026-03-01T05-20-00.csv")
    result = ingest.run(ws, _settings(ws), source)
    assert result.new == 15 and result.failed == 0
    rows = dict(catalog.query(ws.catalog_path, "SELECT regexp_extract(source_path, '([a-z]+)_2026', 1), warnings "
                                               "FROM recordings WHERE source_path LIKE '%05-_0-00.csv'"))
    assert any("NaN samples" in w for w in rows["nan"])
    assert any("flat line" in w for w in rows["flat"])
    assert any("clipping" in w for w in rows["clip"])


def test_mtime_rule_when_no_timestamp(plant):
    ws, source = plant
    pl.DataFrame({"a": np.random.default_rng(0).standard_normal(5000)}).write_csv(source / "motor-01" / "plain.csv")
    ingest.run(ws, _settings(ws), source)
    (warnings,) = catalog.query(ws.catalog_path, "SELECT warnings FROM recordings WHERE source_path LIKE '%plain.csv'")[0]
    assert any("modification time" in w for w in warnings)


def test_real_cwru_files_ingest(tmp_path, real_data):
    ws, _ = init_workspace(tmp_path / "ws")
    ws.config_path.write_text('[equipment.cwru-de]\nsample_rate_hz = 12000\nunits = "g"\n')
    source = tmp_path / "src" / "cwru-de"
    source.mkdir(parents=True)
    for name in ("IR007_0.mat", "OR007@6_0.mat", "B007_0.mat"):
        shutil.copy(real_data / "cwru_12k_de" / name, source / name)
    result = ingest.run(ws, _settings(ws), source.parent)
    assert result.new == 3 and result.failed == 0
    feats = pl.read_parquet(ws.lake / "features" / "*" / "*" / "*.parquet", hive_partitioning=False)
    assert set(feats["channel"]) == {"DE", "FE", "BA"}
    assert set(feats["rpm"]) == {1797.0, 1796.0}
    # 0.007 in inner-race faults are impulsive on the drive-end accelerometer: kurtosis well above Gaussian 3
    ir = feats.filter((pl.col("channel") == "DE") & pl.col("recording_id").is_in(
        [hashlib.sha256((source / "IR007_0.mat").read_bytes()).hexdigest()]))
    assert ir.height == 121265 // 4096 and ir["kurtosis"].median() > 5.2  # measured 5.42


def _spawn_ingest(ws, source) -> subprocess.Popen:
    return subprocess.Popen([vibra_exe(), "ingest", str(source), "--json", "--home", str(ws.root)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_concurrent_ingests_never_double_ingest(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    source = tmp_path / "export"
    synth.run(source, n_equipment=3, days=1, seed=2, start=START, sensor_faults=False, workspace=ws)
    a, b = _spawn_ingest(ws, source), _spawn_ingest(ws, source)
    out_a, out_b = a.communicate(timeout=600), b.communicate(timeout=600)
    assert a.returncode == 0 and b.returncode == 0, (out_a, out_b)
    ra, rb = json.loads(out_a[0]), json.loads(out_b[0])
    assert ra["new"] + rb["new"] == 72 and min(ra["new"], rb["new"]) == 0
    assert "waiting" in out_a[1] + out_b[1]
    st = status.run(ws)
    assert st["completed"] == 72 and st["features_total"] == 72 * 6
    dupes = catalog.query(ws.catalog_path, "SELECT source_path, count(*) FROM recordings GROUP BY 1 HAVING count(*) > 1")
    assert dupes == []


def test_status_and_query_answer_while_ingest_runs(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    source = tmp_path / "export"
    synth.run(source, n_equipment=4, days=2, seed=3, start=START, sensor_faults=False, workspace=ws)
    proc = _spawn_ingest(ws, source)
    answers = []
    try:
        while proc.poll() is None:
            got = run_vibra("status", "--json", "--home", str(ws.root), timeout=60)
            assert got.returncode == 0, got.stderr
            answers.append(json.loads(got.stdout))
            time.sleep(0.05)
    finally:
        out = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert len(answers) >= 2
    assert any(0 < a["completed"] < 192 or a["pending"] + a["processing"] > 0 for a in answers), answers[:3]
    assert status.run(ws)["completed"] == 192


def test_killed_ingest_loses_nothing_and_rerun_completes(tmp_path):
    """SIGKILL an ingest inside a batch (files written, their group commit not made yet); the batch's files
    were never visible nor completed, and the rerun finishes the job with no duplicated or missing rows."""
    import signal

    ws, _ = init_workspace(tmp_path / "ws")
    source = tmp_path / "export"
    synth.run(source, n_equipment=4, days=2, seed=4, start=START, sensor_faults=False, workspace=ws)
    table = ws.table("features")
    proc = _spawn_ingest(ws, source)
    deadline = time.monotonic() + 120
    landed, uncommitted = 0, []
    while time.monotonic() < deadline and proc.poll() is None:
        # mid-batch: at least one batch committed and files of the next one written but not committed
        if len(list(ws.lake.glob("features/date=*/equipment=*/*.parquet"))) >= 20 and lake.is_table(table) \
                and lake.untracked(table):
            proc.send_signal(signal.SIGSTOP)  # frozen: what is below is what the kill interrupts
            uncommitted = lake.untracked(table)
            if uncommitted:
                landed = len(list(ws.lake.glob("features/date=*/equipment=*/*.parquet")))
                break
            proc.send_signal(signal.SIGCONT)  # the batch was committed meanwhile: wait for the next one
        time.sleep(0.01)
    assert 20 <= landed < 192 and uncommitted, f"the kill did not land inside a batch ({landed} files, {uncommitted})"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    done_before = status.run(ws)["completed"]
    assert done_before < 192, "the ingest finished before it could be killed; the test proves nothing"
    completed = {r[0][:16] for r in catalog.query(ws.catalog_path, "SELECT recording_id FROM recordings "
                                                                   "WHERE status = 'completed'")}
    # the uncommitted batch's recordings are not completed (back to pending for the rerun), nor visible
    assert not {f.name.removeprefix("part-").removesuffix(".parquet") for f in uncommitted} & completed
    assert not set(uncommitted) & set(lake.partition_files(table))
    assert len(lake.partition_files(table)) >= len(completed)  # what the ledger completed is committed
    result = ingest.run(ws, _settings(ws), source)
    assert result.new == 192 - done_before and result.failed == 0
    st = status.run(ws)
    assert st["completed"] == 192 and st["pending"] == st["processing"] == 0
    con = duckdb.connect()
    glob = f"'{ws.lake}/features/*/*/*.parquet'"
    total, distinct = con.execute(f"SELECT count(*), count(DISTINCT (recording_id, channel, window_index)) "
                                  f"FROM read_parquet({glob})").fetchone()
    assert total == distinct == st["features_total"] == 192 * 6
    hourly_windows = con.execute(f"SELECT sum(n_windows) FROM read_parquet('{ws.lake}/hourly/*/*/*.parquet')").fetchone()[0]
    assert hourly_windows == total
    assert not list((ws.lake / "hourly" / ".dirty").glob("*"))
    assert not lake.untracked(table)  # the killed batch's files were written again and committed
