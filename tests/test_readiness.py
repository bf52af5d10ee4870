"""Readiness gates on crafted lakes (each side of the thresholds), exit codes, gauges, and snapshots."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from vibra.discovery import embedding, readiness as verdicts, readiness_metrics
from vibra.settings import load_settings
from vibra.signal.indicators import TIME_COLUMNS
from vibra.signal.indicators import SPECTRAL_COLUMNS
from vibra.storage import catalog, lake
from vibra.workspace import init_workspace
from vibra_pipelines import cluster, defects, readiness, snapshot, synth

from conftest import run_vibra

NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)


# -- the verdict rules -------------------------------------------------------------------------------

@pytest.mark.parametrize("value,expect", [(0.95, "green"), (0.9, "green"), (0.8, "amber"), (0.7, "amber"),
                                          (0.69, "red"), (None, "red")])
def test_higher_is_better_sides(value, expect):
    assert verdicts.higher_better(value, 0.9, 0.7) == expect


@pytest.mark.parametrize("value,expect", [(0.1, "green"), (0.25, "green"), (0.3, "amber"), (0.4, "amber"),
                                          (0.41, "red"), (None, "red")])
def test_lower_is_better_sides(value, expect):
    assert verdicts.lower_better(value, 0.25, 0.40) == expect


def test_fail_on_levels():
    assert [verdicts.fails(s, "red") for s in ("green", "amber", "red")] == [False, False, True]
    assert [verdicts.fails(s, "amber") for s in ("green", "amber", "red")] == [False, True, True]
    assert not any(verdicts.fails(s, "never") for s in ("green", "amber", "red"))


# -- crafted lakes ---------------------------------------------------------------------------------------

def craft(root, *, machines=("m1", "m2"), windows=40, days=20.0, end=NOW, null_embedding=0.0, other_dims=0,
          nan_cells=0.0, stats=None, rate=12_000.0, units="g", rpm=1500.0, order=None):
    """A workspace whose features, ledger and settings are written directly (real Parquet, real DuckDB)."""
    ws, _ = init_workspace(root)
    toml = "".join(f"[equipment.{m}]\n" + (f'units = "{units}"\n' if units else "") + (f"rpm = {rpm}\n" if rpm else "")
                   for m in machines)
    ws.config_path.write_text(toml)
    settings = load_settings(ws.config_path, {})
    defn = embedding.definition(settings.features.bands_hz)
    version, dim = embedding.version_of(defn), len(defn["dimensions"])
    embedding.ensure_manifest(ws.artifacts / "models" / "embedding", defn)
    rng = np.random.default_rng(0)
    rows = []
    for mi, m in enumerate(machines):
        n = windows if isinstance(windows, int) else windows[mi]
        times = [end - timedelta(days=days) + timedelta(days=days) * i / max(n - 1, 1) for i in range(n)]
        for i, t in enumerate(times):
            rid = f"{m}-rec{i // 10}"
            row = {"equipment_id": m, "recording_id": rid, "channel": "x", "window_index": i % 10,
                   "window_start": t - timedelta(seconds=1), "window_end": t, "embedding_version": version,
                   "embedding": rng.normal(size=dim).astype(np.float32).tolist()}
            for c in (*TIME_COLUMNS, *SPECTRAL_COLUMNS):
                row[c] = float(rng.random())
            rows.append(row)
    df = pl.DataFrame(rows).with_columns(pl.col("embedding").cast(pl.List(pl.Float32)))
    n = df.height
    if nan_cells:
        k = int(round(nan_cells * n))  # one NaN per affected row in each of the 13 numeric columns
        df = df.with_columns([pl.when(pl.int_range(n) < k).then(float("nan")).otherwise(pl.col(c)).alias(c)
                              for c in (*TIME_COLUMNS, *SPECTRAL_COLUMNS)])
    if null_embedding:
        k = int(round(null_embedding * n))
        df = df.with_columns(embedding=pl.when(pl.int_range(n) < k).then(None).otherwise(pl.col("embedding")))
    if other_dims:
        df = df.with_columns(embedding=pl.when(pl.int_range(n) >= n - other_dims).then(
            pl.col("embedding").list.head(5)).otherwise(pl.col("embedding")))
    if order is not None:
        df = df[order(n)]
    for _, part in df.group_by(["equipment_id"]):
        for j, chunk in enumerate(part.iter_slices(max(1, part.height // 3))):
            lake.write_partitioned(chunk, ws.table("features"), f"c{j}")
    now = datetime.now(timezone.utc)
    ledger = []
    for m in machines:
        recs = df.filter(pl.col("equipment_id") == m).group_by("recording_id").agg(pl.col("window_start").min())
        for rid, start in recs.iter_rows():
            ledger.append({"recording_id": rid, "equipment_id": m, "source_path": f"/src/{m}/{rid}.csv",
                           "size_bytes": 1, "mtime": now, "status": "completed", "n_samples": 1000,
                           "channels": ["x"], "sample_rate_hz": rate, "recorded_at": start, "ingested_at": now,
                           "n_windows": 10, "warnings": [], "vibra_version": "test", "rpm": None, "updated_at": now,
                           "channel_stats": json.dumps([{"channel": "x", "samples": 1000, "nan": 0, "flat": 0,
                                                         "clipped": 0, "nan_windows": 0, **(stats or {})}])})
    catalog.ensure(ws.catalog_path)
    catalog.write_rows(ws.catalog_path, ledger)
    return ws, settings


def test_the_metrics_from_plain_rows_without_a_workspace():
    """The library measures from what the stage read: ledger rows, window statistics, a manifest."""
    r = load_settings(None).readiness
    t0 = NOW - timedelta(days=20)
    rows = [{"equipment_id": "m1", "status": "completed", "recorded_at": t0 + timedelta(hours=h), "rpm": None,
             "sample_rate_hz": 12_000.0, "channel_stats": json.dumps([{"channel": "x", "samples": 1000, "nan": 0,
                                                                         "flat": 50, "clipped": 0}])}
            for h in (0, 6, 30)] + [{"equipment_id": "m1", "status": "duplicate", "recorded_at": None, "rpm": None,
                                     "sample_rate_hz": None, "channel_stats": None}]
    stats = [{"equipment_id": "m1", "first": t0, "last": NOW}]
    found = {(m.name, m.scope): m for m in readiness_metrics.waveform_metrics(
        rows, stats, lambda eid: load_settings(None).equipment_for(eid), r)}
    assert found["flat_line_share", "equipment/m1/channel/x"].value == pytest.approx(0.05)
    assert found["largest_gap_h", "equipment/m1"].value == 24.0
    assert found["duplicate_recordings", "equipment/m1"].value == 1
    assert found["days_of_data", "equipment/m1"].value == 20.0 and found["nyquist_hz", "equipment/m1"].value == 6000.0
    assert found["units_declared", "equipment/m1"].status == "amber"
    none, gauges, flagged = readiness_metrics.clustering_metrics(None, [], r)
    assert [m.status for m in none] == ["red"] * 3 and gauges == {} and flagged == []
    manifest = {"version": "v", "noise_ratio": 0.1, "sizes": {"0": 40, "1": 5}}
    got, gauges, flagged = readiness_metrics.clustering_metrics(manifest, [0], r)
    assert flagged == [1] and gauges["label_coverage"] == 0.5 and gauges["smallest"] == 40
    rul, imbalance = readiness_metrics.label_metrics({"normal": 40, "gear": 10}, 0, 3, r)
    assert rul.status == "green" and imbalance.value == 4.0


def by_name(report, name, scope="workspace"):
    return next(m for m in report["metrics"] if m["name"] == name and m["scope"] == scope)


@pytest.mark.parametrize("null_share,expect", [(0.0, "green"), (0.2, "amber"), (0.4, "red")])
def test_embedding_coverage_sides(tmp_path, null_share, expect):
    ws, settings = craft(tmp_path / "ws", null_embedding=null_share)
    m = by_name(readiness.run(ws, settings, now=NOW), "embedding_coverage")
    assert m["value"] == pytest.approx(1 - null_share) and m["status"] == expect
    assert m["blocks"] == ["cluster", "snapshot"]


@pytest.mark.parametrize("other,expect", [(0, "green"), (3, "red")])
def test_embedding_dimensions_sides(tmp_path, other, expect):
    ws, settings = craft(tmp_path / "ws", other_dims=other)
    m = by_name(readiness.run(ws, settings, now=NOW), "embedding_dimensions")
    assert m["status"] == expect and m["value"] == (1 if other == 0 else 2)


@pytest.mark.parametrize("age_h,expect", [(2, "green"), (48, "amber"), (96, "red")])
def test_recency_sides(tmp_path, age_h, expect):
    ws, settings = craft(tmp_path / "ws", end=NOW - timedelta(hours=age_h))
    report = readiness.run(ws, settings, now=NOW)
    m = by_name(report, "recency_gap_h")
    assert m["value"] == pytest.approx(age_h) and m["status"] == expect


@pytest.mark.parametrize("windows,expect", [((50, 50), "green"), ((70, 30), "red")])
def test_equipment_share_sides(tmp_path, windows, expect):
    ws, settings = craft(tmp_path / "ws", windows=windows)
    m = by_name(readiness.run(ws, settings, now=NOW), "largest_equipment_share")
    assert m["value"] == pytest.approx(max(windows) / sum(windows)) and m["status"] == expect


@pytest.mark.parametrize("share,expect", [(0.0, "green"), (0.0375, "amber"), (0.1, "red")])
def test_missing_numeric_indicators_sides(tmp_path, share, expect):
    ws, settings = craft(tmp_path / "ws", windows=(40, 40), nan_cells=share)
    m = by_name(readiness.run(ws, settings, now=NOW), "missing_numeric_indicators")
    assert m["value"] == pytest.approx(share, abs=1e-9) and m["status"] == expect


@pytest.mark.parametrize("stats,name,expect", [
    ({"nan": 0}, "missing_values", "green"), ({"nan": 10}, "missing_values", "amber"),
    ({"nan": 100}, "missing_values", "red"), ({"flat": 5}, "flat_line_share", "green"),
    ({"flat": 50}, "flat_line_share", "amber"), ({"flat": 200}, "flat_line_share", "red"),
    ({"clipped": 1}, "clipping_share", "green"), ({"clipped": 5}, "clipping_share", "amber"),
    ({"clipped": 20}, "clipping_share", "red")])
def test_waveform_channel_sides(tmp_path, stats, name, expect):
    ws, settings = craft(tmp_path / "ws", machines=("m1",), stats=stats)
    m = by_name(readiness.run(ws, settings, now=NOW), name, "equipment/m1/channel/x")
    assert m["status"] == expect and m["blocks"] == ["train"]


@pytest.mark.parametrize("days,rate,units,rpm,expect", [
    (20.0, 12_000.0, "g", 1500.0, {"days_of_data": "green", "nyquist_hz": "green", "units_declared": "green",
                                   "rpm_available": "green"}),
    (10.0, 1_500.0, None, None, {"days_of_data": "red", "nyquist_hz": "red", "units_declared": "amber",
                                 "rpm_available": "amber"})])
def test_machine_checks_sides(tmp_path, days, rate, units, rpm, expect):
    ws, settings = craft(tmp_path / "ws", machines=("m1",), days=days, rate=rate, units=units, rpm=rpm)
    report = readiness.run(ws, settings, now=NOW)
    for name, status in expect.items():
        assert by_name(report, name, "equipment/m1")["status"] == status, name
    if days < 14:
        assert report["equipment"]["m1"] == "red"


def _clustered(ws, settings, sizes: dict[int, int], noise: int):
    """Write a clustering by hand: ``sizes`` windows per cluster id and ``noise`` noise windows."""
    windows = cluster.read_windows(ws, [])
    ids = np.concatenate([np.full(n, c) for c, n in sizes.items()] + [np.full(noise, -1)])
    assert len(ids) == windows.height
    version = "20260101T000000000000Z-crafted0"
    out = windows.select(*cluster.KEYS, "window_start").with_columns(cluster_id=pl.Series(ids, dtype=pl.Int64),
                                                                      clustering_version=pl.lit(version))
    lake.write_partitioned(out, ws.table("clusters"), version)
    cluster.clustering_store(ws).put(version, {
        "created_at": NOW.isoformat(), "embedding_version": "x", "n_clusters": len(sizes),
        "noise_ratio": noise / len(ids), "sizes": {str(c): n for c, n in sizes.items()}, "clusters": [],
        "windows": len(ids), "validity": None, "drift": {}, "psi": {}})


@pytest.mark.parametrize("noise,expect", [(10, "green"), (30, "amber"), (45, "red")])
def test_noise_ratio_sides(tmp_path, noise, expect):
    ws, settings = craft(tmp_path / "ws", windows=(50, 50))
    _clustered(ws, settings, {0: 50, 1: 50 - noise}, noise)
    assert by_name(readiness.run(ws, settings, now=NOW), "noise_ratio")["status"] == expect


@pytest.mark.parametrize("labelled,expect", [(4, "green"), (2, "amber"), (1, "red")])
def test_label_coverage_and_smallest_cluster(tmp_path, labelled, expect):
    ws, settings = craft(tmp_path / "ws", windows=(50, 50))
    _clustered(ws, settings, {0: 40, 1: 30, 2: 20, 3: 10}, 0)
    for cid in range(labelled):
        defects.label_cluster(ws, settings, cid, ["normal", "imbalance", "looseness", "gear"][cid])
    report = readiness.run(ws, settings, now=NOW)
    assert by_name(report, "label_coverage")["value"] == labelled / 4
    assert by_name(report, "label_coverage")["status"] == expect
    smallest = by_name(report, "smallest_labeled_cluster")
    assert smallest["value"] == [40, 30, 20, 10][labelled - 1]
    assert smallest["status"] == ("red" if labelled == 4 else "green")  # 10 < 15: flag for merge
    assert report["flagged_for_merge"] == [3]
    imbalance = by_name(report, "class_imbalance")
    if labelled > 1:
        assert imbalance["value"] == pytest.approx(40 / [40, 30, 20, 10][labelled - 1])
    else:  # one labelled class: nothing to balance, a classifier cannot be trained
        assert imbalance["value"] is None and imbalance["status"] == "red"


@hsettings(max_examples=6, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_verdict_does_not_depend_on_row_order(tmp_path_factory, seed):
    def shuffled(n):
        return np.random.default_rng(seed).permutation(n)

    a, sa = craft(tmp_path_factory.mktemp("a"), windows=(30, 20), nan_cells=0.03, end=NOW - timedelta(hours=30))
    b, sb = craft(tmp_path_factory.mktemp("b"), windows=(30, 20), nan_cells=0.03, end=NOW - timedelta(hours=30),
                  order=shuffled)
    ra, rb = readiness.assess(a, sa, now=NOW), readiness.assess(b, sb, now=NOW)
    assert ra["status"] == rb["status"] and ra["equipment"] == rb["equipment"]
    assert [(m["name"], m["scope"], m["status"], m["value"]) for m in ra["metrics"]] == \
        [(m["name"], m["scope"], m["status"], m["value"]) for m in rb["metrics"]]


# -- exit codes, JSON, gauges ----------------------------------------------------------------------

def test_exit_codes_and_json_schema(tmp_path):
    ws, settings = craft(tmp_path / "ws", windows=(50, 50))
    home = ["--home", str(ws.root)]
    # no clustering yet: red on noise ratio and label coverage
    red = run_vibra("readiness", "--json", "--fail-on", "red", *home)
    assert red.returncode == 3, red.stderr
    payload = json.loads(red.stdout)
    assert payload["status"] == "red" and payload["failed"]
    assert by_name(payload, "label_coverage")["status"] == "red"
    for m in payload["metrics"]:
        assert {"name", "scope", "value", "threshold", "status", "blocks"} <= set(m)
        assert m["status"] in ("green", "amber", "red") and isinstance(m["blocks"], list)
    assert run_vibra("readiness", "--fail-on", "never", *home).returncode == 0
    # clustered and labelled: every metric green once the crafted (past) times are allowed
    _clustered(ws, settings, {0: 40, 1: 30, 2: 30}, 0)
    for cid, d in enumerate(["normal", "imbalance", "looseness"]):
        defects.label_cluster(ws, settings, cid, d)
    env = {"VIBRA_READINESS_RECENCY_GREEN_H": "100000", "VIBRA_READINESS_RECENCY_RED_H": "100000",  # crafted in the past
           "VIBRA_READINESS_GAP_GREEN_H": "100000", "VIBRA_READINESS_GAP_RED_H": "100000"}
    green = run_vibra("readiness", "--json", "--fail-on", "amber", *home, env=env)
    assert green.returncode == 0, green.stdout
    assert json.loads(green.stdout)["status"] == "green"
    env["VIBRA_READINESS_CLASS_IMBALANCE_GREEN"] = "1.1"  # 40 / 30 windows: now amber
    assert run_vibra("readiness", "--fail-on", "amber", *home, env=env).returncode == 3
    assert run_vibra("readiness", "--fail-on", "red", *home, env=env).returncode == 0
    env["VIBRA_READINESS_MIN_DAYS"] = "30"  # 20 days of data: now red
    assert run_vibra("readiness", "--fail-on", "red", *home, env=env).returncode == 3
    bad = run_vibra("readiness", "--fail-on", "purple", *home)
    assert bad.returncode == 2


def test_gauges_parse_with_prometheus_parser(tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    ws, settings = craft(tmp_path / "ws", windows=(50, 50), end=NOW - timedelta(hours=3))
    _clustered(ws, settings, {0: 60, 1: 40}, 0)
    defects.label_cluster(ws, settings, 0, "normal")
    report = readiness.run(ws, settings, now=NOW)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(ws.metrics_path.read_text()) for s in fam.samples}
    assert samples[("vibra_embedding_coverage_ratio", ())] == 1.0
    assert samples[("vibra_clustering_label_coverage_ratio", ())] == 0.5
    assert samples[("vibra_min_cluster_size_labeled", ())] == 60
    assert samples[("vibra_p50_cluster_size", ())] == 50 and samples[("vibra_p90_cluster_size", ())] == 58
    assert samples[("vibra_features_with_embedding_total", ())] == 100
    assert samples[("vibra_data_recency_seconds", ())] == pytest.approx(3 * 3600)
    assert samples[("vibra_data_recency_seconds", (("equipment", "m1"),))] == pytest.approx(3 * 3600)
    assert samples[("vibra_readiness_status", ())] == verdicts.RANK[report["status"]]
    assert samples[("vibra_readiness_status", (("equipment", "m2"),))] == verdicts.RANK[report["equipment"]["m2"]]
    assert ("vibra_clustering_noise_ratio", ()) in samples


# -- the check on a fresh synth workspace ----------------------------------------------------

def test_synth_workspace_before_and_after_clustering_and_labelling(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    home = ["--home", str(ws.root)]
    assert run_vibra("synth", "--out", str(tmp_path / "export"), "--equipment", "4", "--days", "2", "--seed", "3",
                     "--no-sensor-faults", *home).returncode == 0
    assert run_vibra("ingest", str(tmp_path / "export"), *home).returncode == 0
    before = run_vibra("readiness", "--json", "--fail-on", "red", *home)
    assert before.returncode == 3
    b = json.loads(before.stdout)
    assert by_name(b, "label_coverage")["status"] == "red" and by_name(b, "recency_gap_h")["status"] == "green"
    assert by_name(b, "embedding_coverage")["status"] == "green"
    assert run_vibra("cluster", "--umap-components", "0", *home).returncode == 0
    table = json.loads(run_vibra("clusters", "--json", *home, check=True).stdout)
    for c in table["clusters"]:
        run_vibra("label", "cluster", str(c["cluster_id"]), "normal", *home, check=True)
    after = json.loads(run_vibra("readiness", "--json", *home).stdout)
    assert by_name(after, "label_coverage")["status"] == "green"
    assert after["counts"]["red"] < b["counts"]["red"]
    # newest data four days old: red on recency
    settings = load_settings(ws.config_path, {})
    last = pl.read_parquet(ws.lake / "features" / "*" / "*" / "*.parquet", hive_partitioning=False)["window_end"].max()
    stale = readiness.assess(ws, settings, now=last + timedelta(days=4))
    assert by_name(stale, "recency_gap_h")["status"] == "red" and stale["status"] == "red"


# -- snapshots -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def labelled_plant(tmp_path_factory):
    root = tmp_path_factory.mktemp("snap")
    ws, _ = init_workspace(root / "ws")
    synth.run(root / "export", n_equipment=3, days=2, seed=5, start=NOW - timedelta(days=2), sensor_faults=False,
              workspace=ws)
    settings = load_settings(ws.config_path, {})
    settings = replace(settings, cluster=replace(settings.cluster, umap_components=0))
    from vibra_pipelines import ingest

    ingest.run(ws, settings, root / "export")
    cluster.run(ws, settings)
    defects.label_cluster(ws, settings, 0, "normal")
    return ws, settings


def test_snapshot_round_trip_and_determinism(labelled_plant):
    ws, settings = labelled_plant
    a = snapshot.run(ws, settings, readiness=readiness.assess(ws, settings), stratify="equipment", max_per_class=40, seed=7)
    b = snapshot.run(ws, settings, readiness=readiness.assess(ws, settings), stratify="equipment", max_per_class=40, seed=7)
    c = snapshot.run(ws, settings, readiness=readiness.assess(ws, settings), stratify="equipment", max_per_class=40, seed=8)
    pa = ws.artifacts / "snapshots" / a["version"] / "data.parquet"
    pb = ws.artifacts / "snapshots" / b["version"] / "data.parquet"
    assert a["version"] != b["version"] and pa.read_bytes() == pb.read_bytes()  # byte-identical
    assert a["data_sha256"] == b["data_sha256"] != c["data_sha256"]
    rows, _ = snapshot.training_rows(ws, settings)
    expect = snapshot.select(rows, "equipment", 40, 7)
    got = snapshot.read(ws, a["version"])
    assert got.equals(expect)  # read back equals what was selected
    assert a["rows"] == got.height == 3 * 40 and a["equipment_rows"] == {e: 40 for e in a["equipment_rows"]}
    assert set(got.columns) >= {"equipment_id", "recording_id", "channel", "window_index", "window_start",
                                "cluster_id", "embedding", "defect", "label_source"}
    assert a["embedding_version"] == embedding.version_of(embedding.definition(settings.features.bands_hz))
    assert a["clustering_version"] == cluster.latest_manifest(ws)["version"]
    assert a["knn_version"] == defects.latest_knn(ws)["version"]
    assert a["readiness"]["status"] in ("green", "amber", "red") and a["settings"]["cluster"]["umap_components"] == 0
    assert sum(a["class_balance"].values()) == a["rows"]
    # stratified by defect: at most N per class, unlabelled windows their own stratum
    d = snapshot.run(ws, settings, readiness=readiness.assess(ws, settings), stratify="defect", max_per_class=25, seed=1)
    assert all(v <= 25 for v in d["class_balance"].values())
    listed = snapshot.versions(ws)
    assert listed[0]["version"] == d["version"] and listed[0]["latest"]
    removed = snapshot.gc(ws, keep=2)
    assert len(removed) == 2 and d["version"] not in removed and len(snapshot.versions(ws)) == 2
    (ws.artifacts / "snapshots" / d["version"] / "data.parquet").write_bytes(b"tampered")
    with pytest.raises(Exception, match="sha256"):
        snapshot.read(ws, d["version"])


def test_snapshot_cli_and_psi_against_it(labelled_plant):
    ws, settings = labelled_plant
    home = ["--home", str(ws.root)]
    out = json.loads(run_vibra("snapshot", "--seed", "3", "--json", *home, check=True).stdout)
    assert out["rows"] == out["rows_before_selection"]
    shown = json.loads(run_vibra("snapshot", "show", out["version"], "--json", *home, check=True).stdout)
    assert shown["data_sha256"] == out["data_sha256"]
    listed = json.loads(run_vibra("snapshot", "list", "--json", *home, check=True).stdout)["snapshots"]
    assert listed[0]["version"] == out["version"]
    bad = run_vibra("snapshot", "show", "nope", *home)
    assert bad.returncode == 1 and "not found" in bad.stderr
    # the next clustering compares the embedding distribution with this snapshot: same lake, PSI near 0
    result = cluster.run(ws, settings)
    assert result.psi_max is not None and result.psi_max < 0.01  # measured 0.0 (the same windows)
    assert cluster.latest_manifest(ws)["psi"]["snapshot_version"] == out["version"]
