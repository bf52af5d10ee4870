"""Operations: compaction, retention, gc, doctor, migrations, metrics, run history, crash safety, fuzzed input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from datetime import datetime, timedelta, timezone

import duckdb
import numpy as np
import polars as pl
import pytest
from deltalake import DeltaTable
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from vibra.settings import load_settings
from vibra.storage import catalog, lake, migrations
from vibra.workspace import init_workspace
from vibra_pipelines import doctor, ingest, maintain, status, synth

from conftest import run_vibra, vibra_exe

START = datetime(2026, 3, 1, tzinfo=timezone.utc)
KEYS = ["equipment_id", "recording_id", "channel", "window_index"]


def _features(ws) -> pl.DataFrame:
    files = lake.partition_files(ws.table("features"))  # the table's current files, as its log lists them
    if not files:
        return pl.DataFrame()
    return pl.concat([pl.read_parquet(f, hive_partitioning=False) for f in files], how="diagonal_relaxed").sort(KEYS)


def _n_files(ws, table="features") -> int:
    return len(lake.partition_files(ws.table(table)))


def _small_runs(tmp_path, n_equipment=2, days=1.0, runs=4, seed=5):
    """A synth export ingested in several small runs (files arrive over time, as in a plant)."""
    ws, _ = init_workspace(tmp_path / "ws")
    export = tmp_path / "export"
    synth.run(export, n_equipment=n_equipment, days=days, seed=seed, start=START, sensor_faults=False, workspace=ws)
    settings = load_settings(ws.config_path, {})
    files = sorted(p for p in export.rglob("*.csv*") if p.parent != export)  # not truth.csv
    arriving = tmp_path / "arriving"
    for k in range(runs):
        for p in files[k::runs]:
            dest = arriving / p.relative_to(export)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, dest)
        ingest.run(ws, settings, arriving)
    return ws, settings, arriving


def test_compaction_merges_files_keeps_rows_and_content(tmp_path):
    ws, settings, _ = _small_runs(tmp_path)
    before, files_before = _features(ws), _n_files(ws)
    result = maintain.compact(ws, settings, tables=["features"])
    after = _features(ws)
    assert _n_files(ws) == result.tables["features"]["files_after"] < files_before
    assert _n_files(ws) == len(list(ws.lake.glob("features/date=*/equipment=*")))  # one file per partition
    assert after.height == before.height == result.tables["features"]["rows"]
    assert after.select(sorted(after.columns)).equals(before.select(sorted(before.columns)))
    history = DeltaTable(str(ws.table("features"))).history()  # one optimize commit per partition, data unchanged
    assert sum(h["operation"] == "OPTIMIZE" for h in history) == result.tables["features"]["partitions"]
    assert doctor.check(ws, settings)["ok"]
    # a rerun of ingest after compaction stores nothing twice
    assert ingest.run(ws, settings, tmp_path / "arriving").new == 0
    assert _features(ws).height == before.height


def test_compaction_keeps_uncommitted_recordings_apart(tmp_path):
    """Windows of a recording the ledger does not hold as completed are never merged in (a rerun would
    rewrite them under their own name, and the merged copy would double them)."""
    ws, settings, _ = _small_runs(tmp_path, runs=1)
    part = next(ws.lake.glob("features/date=*/equipment=*"))
    stray = part / "part-00000000000000ab.parquet"
    shutil.copy(next(part.glob("*.parquet")), stray)
    lake.commit(ws.table("features"), add=[stray])
    result = maintain.compact(ws, settings, tables=["features"])
    assert result.skipped_uncommitted == 1 and stray.exists()


def _spawn(ws, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIBRA_")}
    return subprocess.Popen([vibra_exe(), *args, "--home", str(ws.root)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _freeze_when(proc, partial, what: str, timeout_s: float = 300.0):
    """Poll until ``partial()`` returns a state (not None), then SIGSTOP the process and read the
    state again while it is frozen: what the test asserts is exactly what the kill interrupts."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if partial() is not None:
            proc.send_signal(signal.SIGSTOP)
            state = partial()
            if state is not None:
                return state
            proc.send_signal(signal.SIGCONT)  # it moved on between the two looks: try again
        time.sleep(0.005)
    proc.kill()
    out = proc.communicate(timeout=60)
    raise AssertionError(f"{what} finished (or never reached the partial state) before it could be killed; "
                         f"the test would prove nothing\n{out}")


def _compaction_state(ws, n_parts: int, compacted_at_least: int):
    """Partitions already merged (one optimize-written file) while a compaction is mid-work, else None."""
    by_part: dict = {}
    for date, eid, f in lake.active(ws.table("features")):
        by_part.setdefault((date, eid), []).append(f.name)
    merged = sum(1 for names in by_part.values() if len(names) == 1 and not lake.OWN_FILE.match(names[0]))
    if compacted_at_least <= merged < n_parts:
        return merged
    return None


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_killed_compaction_leaves_old_or_new_never_both(tmp_path, seed):
    ws, settings, _ = _small_runs(tmp_path, n_equipment=3, runs=1, seed=seed)
    before = _features(ws)
    n_parts = len(list(ws.lake.glob("features/date=*/equipment=*")))
    assert n_parts >= 3
    # seed 1 dies after one partition's commit, seeds 2 and 3 after one or two (wherever the optimize is then)
    compacted_at_least = min(seed, n_parts - 1)
    proc = _spawn(ws, "maintain", "compact", "--table", "features")
    merged = _freeze_when(proc, lambda: _compaction_state(ws, n_parts, compacted_at_least), "the compaction")
    assert compacted_at_least <= merged < n_parts  # mid-work: some partitions committed, not all
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    mid = _features(ws)
    assert mid.height == before.height  # every window visible exactly once, whatever instant it died
    assert mid.select(KEYS).n_unique() == mid.height
    report = doctor.check(ws, settings)
    assert report["ok"], report  # leftovers are only a warning
    maintain.compact(ws, settings, tables=["features"])
    after = _features(ws).sort(KEYS)
    assert after.select(sorted(after.columns)).equals(before.sort(KEYS).select(sorted(before.columns)))
    assert doctor.check(ws, settings, repair=True)["ok"]
    assert doctor.check(ws, settings)["findings"] == []


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_killed_ingest_then_rerun_doctor_clean(tmp_path, seed):
    ws, _ = init_workspace(tmp_path / "ws")
    export = tmp_path / "export"
    synth.run(export, n_equipment=3, days=1, seed=seed, start=START, sensor_faults=False, workspace=ws)
    settings = load_settings(ws.config_path, {})
    proc = _spawn(ws, "ingest", str(export))
    # one features file per recording, committed in batches (group commit, one a second): the kill lands
    # after at least one batch is visible and before the last; where exactly depends on the seed's data
    # and the machine's speed (a fixed target count could fall inside one batch and never be seen)
    def landed():
        n = _n_files(ws)
        return n if 1 <= n < 72 else None

    landed_at_kill = _freeze_when(proc, landed, "the ingest")
    assert 1 <= landed_at_kill < 72
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    result = ingest.run(ws, settings, export)
    assert result.failed == 0 and result.new >= 72 - landed_at_kill
    st_ = status.run(ws)
    assert st_["completed"] == 72
    feats = _features(ws)
    assert feats.height == feats.select(KEYS).n_unique() == st_["features_total"] == 72 * 6
    report = doctor.check(ws, settings, repair=True)  # only leftovers of the killed run can be found
    assert report["ok"] and all(f["severity"] != "error" for f in report["findings"]), report
    assert doctor.check(ws, settings)["findings"] == []


def test_two_ingests_and_a_compaction_at_once(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    export = tmp_path / "export"
    synth.run(export, n_equipment=3, days=1, seed=21, start=START, sensor_faults=False, workspace=ws)
    settings = load_settings(ws.config_path, {})
    procs = [_spawn(ws, "ingest", str(export)), _spawn(ws, "maintain", "compact"), _spawn(ws, "ingest", str(export))]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    maintain.compact(ws, settings)
    feats = _features(ws)
    assert status.run(ws)["completed"] == 72 and feats.height == feats.select(KEYS).n_unique() == 72 * 6
    assert doctor.check(ws, settings)["findings"] == []


def test_retention_dry_run_then_real_and_expired_recordings(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    export = tmp_path / "export"
    synth.run(export, n_equipment=2, days=3, seed=8, start=START, sensor_faults=False, workspace=ws)
    settings = load_settings(ws.config_path, {})
    ingest.run(ws, settings, export)
    now = START + timedelta(days=3)
    dates = sorted(p.name for p in ws.table("features").glob("date=*"))
    assert len(dates) == 3
    dry = maintain.retention(ws, settings, "features", "2d", dry_run=True, now=now)
    assert dry["dates"] == ["2026-03-01"] and dry["files"] > 0 and sorted(p.name for p in ws.table("features").glob("date=*")) == dates
    real = maintain.retention(ws, settings, "features", "2d", now=now)
    assert sorted(p.name for p in ws.table("features").glob("date=*")) == dates[1:]
    assert real["recordings_expired"] == 2 * 24
    statuses = dict(catalog.query(ws.catalog_path, f"SELECT status, count(*) FROM {catalog.CURRENT} c GROUP BY 1"))
    assert statuses == {"completed": 2 * 48, "expired": 2 * 24}  # history kept
    assert not list(ws.table("hourly").glob("date=2026-03-01/*/*.parquet"))
    again = ingest.run(ws, settings, export)
    assert again.new == 0 and again.skipped == 3 * 48  # expired files are not re-ingested…
    asked = ingest.run(ws, settings, export, include_expired=True)
    assert asked.new == 2 * 24  # …unless asked
    assert doctor.check(ws, settings)["findings"] == []
    with pytest.raises(Exception, match="90d"):
        maintain.retention(ws, settings, "features", "ninety days")


def test_gc_keeps_newest_and_latest(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    root = ws.artifacts / "models" / "clustering"
    for k in range(5):
        (root / f"2026010{k}T000000Z-x").mkdir(parents=True)
        (root / f"2026010{k}T000000Z-x" / "manifest.json").write_text("{}")
    (root / "latest.json").write_text(json.dumps({"version": "20260100T000000Z-x", "schema": 1}))  # the oldest one
    settings = load_settings(ws.config_path, {})
    removed = maintain.gc(ws, settings, keep=2)
    left = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert left == ["20260100T000000Z-x", "20260103T000000Z-x", "20260104T000000Z-x"]
    assert len(removed["clustering"]) == 2


def test_doctor_finds_explains_and_repairs(tmp_path):
    ws, settings, _ = _small_runs(tmp_path, runs=1)
    home = ["--home", str(ws.root)]
    clean = json.loads(run_vibra("doctor", "--json", *home, check=True).stdout)
    assert clean["ok"] and clean["findings"] == []
    parts = sorted(ws.lake.glob("features/date=*/equipment=*"))
    files = sorted(parts[0].glob("*.parquet"))
    table = ws.table("features")
    (parts[0] / ".part-x.parquet.tmp-999999-deadbeef").write_bytes(b"half")          # a killed writer's file
    victim = files[0].name.removeprefix("part-").removesuffix(".parquet")
    lake.remove_files([files[0]])                                                       # a completed recording's windows gone
    shutil.copy(files[1], parts[0] / "part-copy-of-one.parquet")                        # windows stored twice
    orphan = pl.read_parquet(files[2]).with_columns(recording_id=pl.lit("f" * 64))
    orphan.write_parquet(parts[0] / f"part-{'f' * 16}.parquet")                        # windows with no ledger row
    lake.commit(table, add=[parts[0] / "part-copy-of-one.parquet", parts[0] / f"part-{'f' * 16}.parquet"])
    shutil.copy(files[1], parts[0] / "part-never-committed.parquet")                    # a writer killed before its commit
    (ws.artifacts / "models" / "knn").mkdir(parents=True)
    (ws.artifacts / "models" / "knn" / "latest.json").write_text('{"version": "gone", "schema": 1}')
    found = run_vibra("doctor", "--json", *home)
    assert found.returncode == 1
    report = json.loads(found.stdout)
    checks = {f["check"]: f for f in report["findings"]}
    assert {"leftover_temporary_files", "completed_without_windows", "duplicate_windows", "orphan_windows",
            "dangling_latest_pointer"} <= set(checks)
    assert all(f["explanation"] and f["repair"] for f in report["findings"])
    assert checks["completed_without_windows"]["count"] == 1
    fixed = json.loads(run_vibra("doctor", "--repair", "--json", *home, check=True).stdout)
    assert fixed["ok"] and all(f["repaired"] for f in fixed["findings"])
    feats = _features(ws)
    assert feats.height == feats.select(KEYS).n_unique() and "f" * 64 not in set(feats["recording_id"])
    again = ingest.run(ws, settings, tmp_path / "arriving")  # the recording whose windows were lost comes back
    assert again.new == 1 and any(r.startswith(victim) for r in set(_features(ws)["recording_id"]))
    assert json.loads(run_vibra("doctor", "--json", *home, check=True).stdout)["findings"] == []


def _catalog_at(path, version: int):
    """A catalog as version ``version`` of vibra left it, with one recording and one run."""
    con = duckdb.connect(str(path))
    for ddl in migrations.V1_DDL:
        con.execute(ddl)
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.execute("INSERT INTO recordings (recording_id, equipment_id, source_path, status, n_windows) "
                "VALUES ('abc', 'm1', '/src/m1/a.csv', 'completed', 6)")
    con.execute("INSERT INTO runs VALUES ('r1', 'ingest', TIMESTAMPTZ '2026-01-01 00:00:00+00', "
                "TIMESTAMPTZ '2026-01-01 00:01:00+00', 'ok', '{}', '{}', '0.1')")
    for v, step in migrations.MIGRATIONS:
        if v <= version:
            step(con)
            con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(v)])
    con.close()


@pytest.mark.parametrize("version", [0, 1, 2, 4, 5, migrations.CURRENT])
def test_migrations_from_every_version(tmp_path, version):
    path = tmp_path / "catalog.duckdb"
    if version:
        _catalog_at(path, version)
    with catalog.connect(path) as con:
        assert migrations.migrate(con) == (version, migrations.CURRENT)
        assert migrations.migrate(con) == (migrations.CURRENT, migrations.CURRENT)  # idempotent
        cols = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                          "WHERE table_name = 'runs'").fetchall()}
        assert {"run_id", "command", "arguments", "started_at", "finished_at", "status", "counts", "error",
                "pid", "host"} <= cols
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert {"settings_seen", "alarms"} <= tables  # schema 6
        assert "channel_stats" in {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                                             "WHERE table_name = 'recordings'").fetchall()}
        assert con.execute("SELECT count(*) FROM defect_types WHERE source = 'seed'").fetchone()[0] == 11
        if version:
            assert con.execute("SELECT recording_id, n_windows FROM recordings").fetchall() == [("abc", 6)]
            assert con.execute("SELECT extract(minute FROM finished_at), status, pid FROM runs").fetchone() == (1, "ok", None)


def test_metrics_accumulate_and_parse(tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    ws, settings, arriving = _small_runs(tmp_path, runs=2)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(ws.metrics_path.read_text()) for s in fam.samples}
    n = len(list(arriving.rglob("*.csv*")))
    assert samples[("vibra_ingest_files_total", (("status", "new"),))] == n  # two runs added up
    assert samples[("vibra_ingest_files_total", (("status", "skipped"),))] == n // 2
    assert samples[("vibra_windows_computed_total", ())] == _features(ws).height
    assert samples[("vibra_ingest_bytes_total", ())] == sum(p.stat().st_size for p in arriving.rglob("*.csv*"))
    assert samples[("vibra_last_success_timestamp_seconds", (("job", "ingest"),))] > 0
    from vibra.anomaly import FAMILIES
    from vibra_pipelines import anomaly, forecast

    anomaly.train(ws, settings, models=["baseline"], baseline_days=0.3)
    anomaly.train(ws, settings, models=["baseline"], baseline_days=0.3)
    forecast.run(ws, settings, indicators=["rms"], min_points=8)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(ws.metrics_path.read_text()) for s in fam.samples}
    assert samples[("vibra_model_retrain_total", (("model", "baseline"),))] == 2 * 2  # 2 machines, twice
    info = [k for k in samples if k[0] == "vibra_model_version_info"]
    assert len(info) == 2 and all(dict(k[1])["model"] == "baseline" for k in info) and "baseline" in FAMILIES
    assert samples[("vibra_forecast_runs_total", (("status", "ok"),))] == 1
    assert sum(v for k, v in samples.items() if k[0] == "vibra_forecasts_generated_total") == 4  # 2 × 2 channels


def test_runs_history_and_json_logs(tmp_path):
    ws, settings, arriving = _small_runs(tmp_path, runs=1)
    home = ["--home", str(ws.root)]
    run_vibra("maintain", "compact", *home, check=True)
    run_vibra("maintain", "retention", "--table", "scores", "--older-than", "90d", "--dry-run", *home, check=True)
    run_vibra("maintain", "gc", *home, check=True)
    logged = run_vibra("--log-format", "json", "--log-level", "info", "doctor", *home, check=True)
    events = [json.loads(line) for line in logged.stderr.splitlines() if line.startswith("{")]
    assert [e["message"] for e in events] == ["run started", "run finished"]
    assert events[1]["command"] == "doctor" and events[1]["status"] == "ok" and "seconds" in events[1]
    rows = json.loads(run_vibra("runs", "--json", *home, check=True).stdout)["runs"]
    commands = [r["command"] for r in rows]
    assert commands[:4] == ["doctor", "maintain gc", "maintain retention --dry-run", "maintain compact"]
    assert "ingest" in commands
    assert rows[3]["arguments"].startswith("maintain compact") and rows[3]["status"] == "ok"
    assert all({"run_id", "started_at", "finished_at", "counts", "error"} <= set(r) for r in rows)
    failed = run_vibra("maintain", "retention", "--table", "nope", "--older-than", "1d", *home)
    assert failed.returncode == 1 and "choose one of" in failed.stderr


# -- fuzzed bad input ---------------------------------------------------------------------------

ROW = st.one_of(
    st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.just(""), st.just("1e308"),
                       st.text(alphabet="abc,;\"' \t", max_size=6)), min_size=0, max_size=5).map(",".join),
    st.text(max_size=40), st.just("x" * 5000))


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(header=st.sampled_from(["x,y", "time,x", "", "a;b", "\ufeffx,y"]), rows=st.lists(ROW, max_size=60),
       encoding=st.sampled_from(["utf-8", "latin-1", "utf-16"]), good_rows=st.integers(0, 9000))
def test_fuzzed_csv_is_ingested_or_failed_with_a_reason(tmp_path_factory, header, rows, encoding, good_rows):
    root = tmp_path_factory.mktemp("fuzz")
    ws, _ = init_workspace(root / "ws")
    ws.config_path.write_text("[equipment.m1]\nsample_rate_hz = 1000\n[features]\nframe_length = 256\nhop_length = 256\n")
    src = root / "src" / "m1"
    src.mkdir(parents=True)
    rng = np.random.default_rng(good_rows)
    body = "\n".join([header] + [f"{a:.6f},{b:.6f}" for a, b in rng.normal(size=(good_rows, 2))] + rows)
    try:
        (src / "bad.csv").write_bytes(body.encode(encoding, errors="replace"))
    except UnicodeEncodeError:
        (src / "bad.csv").write_bytes(body.encode("utf-8", errors="replace"))
    good = pl.DataFrame({"x": rng.normal(size=2048), "y": rng.normal(size=2048)})
    good.write_csv(src / "good.csv")
    result = ingest.run(ws, load_settings(ws.config_path, {}), src.parent)
    assert result.new + result.failed == 2  # the batch always finishes
    rows_ = dict(catalog.query(ws.catalog_path, f"SELECT source_path, status FROM {catalog.CURRENT} c"))
    assert rows_[str(src / "good.csv")] == "completed"
    if rows_[str(src / "bad.csv")] == "failed":
        reason = result.failures[str(src / "bad.csv")]
        assert "bad.csv" in reason and len(reason.splitlines()) == 1 and "Traceback" not in reason
    assert doctor.check(ws, load_settings(ws.config_path, {}))["ok"]


def test_migrate_converts_a_hive_parquet_lake_in_place(tmp_path):
    """A lake written the way vibra wrote it before Delta (plain Parquet files in date=/equipment= folders,
    two schema ages) becomes Delta tables in place: no file moves, every row stays visible, and DuckDB
    and Polars read the tables through their logs."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ws, _ = init_workspace(tmp_path / "ws")
    written = []
    for k, (date, eid) in enumerate([("2026-03-01", "m1"), ("2026-03-01", "m2"), ("2026-03-02", "m1")]):
        rows = {"equipment_id": [eid] * 3, "recording_id": [f"{k:016x}" * 4] * 3, "channel": ["x"] * 3,
                "window_index": [0, 1, 2], "rms": [1.0 + k, 2.0, 3.0],
                "window_start": pa.array([datetime.fromisoformat(date).replace(tzinfo=timezone.utc)] * 3,
                                         pa.timestamp("us", "UTC"))}
        if k == 2:  # a later schema age: one more column
            rows["embedding_version"] = ["e1"] * 3
        path = ws.table("features") / f"date={date}" / f"equipment={eid}" / f"part-{k:016x}.parquet"
        path.parent.mkdir(parents=True)
        pq.write_table(pa.table(rows), path)
        written.append(path)
    assert not lake.is_table(ws.table("features"))
    assert lake.partition_files(ws.table("features")) == sorted(written)  # unconverted: read as the files lie

    out = json.loads(run_vibra("migrate", "--json", "--home", str(ws.root), check=True).stdout)
    assert out["lake_tables_converted"] == {"features": 3}
    assert lake.is_table(ws.table("features")) and all(p.exists() for p in written)  # in place
    assert lake.partition_files(ws.table("features")) == sorted(written)
    again = json.loads(run_vibra("migrate", "--json", "--home", str(ws.root), check=True).stdout)
    assert again["lake_tables_converted"] == {}

    from deltalake import DeltaTable

    dt = DeltaTable(str(ws.table("features")))
    assert dt.metadata().partition_columns == ["date", "equipment"]
    con = duckdb.connect()
    con.register("features", dt.to_pyarrow_dataset())  # DuckDB over the table's current files, offline
    n, versions = con.execute("SELECT count(*), count(embedding_version) FROM features").fetchone()
    assert (n, versions) == (9, 3)
    assert pl.scan_delta(str(ws.table("features"))).filter(pl.col("equipment") == "m1").collect().height == 6

    extra = pl.DataFrame({"equipment_id": ["m2"], "recording_id": ["a" * 64], "channel": ["x"], "window_index": [0],
                          "rms": [9.0], "window_start": [datetime(2026, 3, 2, tzinfo=timezone.utc)]})
    lake.write_partitioned(extra, ws.table("features"), "a" * 16)  # a write after the conversion: one commit more
    assert len(lake.partition_files(ws.table("features"))) == 4
    assert con.execute(f"SELECT count(*) FROM {lake.READ_FILES}",
                       [[str(f) for f in lake.partition_files(ws.table("features"))]]).fetchone()[0] == 10
