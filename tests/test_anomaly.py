"""Anomaly models: the shared estimator contract, artifacts, and quality on data with known truth."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from conftest import CWRU_TOML, stage

from vibra.errors import CorruptArtifactError, InputError
from vibra.anomaly import FAMILIES, make, registry
from vibra.settings import load_settings
from vibra.workspace import Workspace, init_workspace
from vibra_pipelines import anomaly, ingest, status, synth
from conftest import run_vibra

START = datetime(2026, 2, 1, tzinfo=timezone.utc)


def _blobs(seed: int, n: int = 400, d: int = 6):
    rng = np.random.default_rng(seed)
    inliers = rng.standard_normal((n, d))
    outliers = rng.standard_normal((40, d)) * 0.5 + rng.choice([-6.0, 6.0], size=(40, d))
    return inliers, outliers


@pytest.mark.parametrize("family", FAMILIES)
def test_contract_every_family(family, tmp_path):
    inliers, outliers = _blobs(1)
    model = make(family, seed=7)
    assert model.fit(inliers) is model
    s_in, s_out = model.score(inliers), model.score(outliers)
    assert s_in.shape == (400,) and s_out.shape == (40,)
    assert np.isfinite(s_in).all() and np.isfinite(s_out).all()
    # higher = more anomalous
    auc = roc_auc_score(np.r_[np.zeros(400), np.ones(40)], np.r_[s_in, s_out])
    assert auc > 0.99, auc  # measured 1.000 for every family
    # the threshold is the training-score quantile; predict applies it
    assert model.threshold_ == pytest.approx(np.quantile(model.train_scores_, 0.98))
    np.testing.assert_array_equal(model.predict(outliers), model.score(outliers) > model.threshold_)
    # the 0.98 quantile threshold: measured 0.015 / 0.0125 / 0.0225 (iforest / hst / baseline) of the inliers
    assert 0.0 < np.mean(model.predict(inliers)) <= 0.03
    # refit with the same seed: identical scores
    again = make(family, seed=7).fit(inliers)
    np.testing.assert_array_equal(again.score(outliers), s_out)
    # save / load round trip
    folder = tmp_path / family
    folder.mkdir()
    model.save(folder)
    loaded = type(model).load(folder, model.params())
    np.testing.assert_allclose(loaded.score(outliers), s_out)


def test_families_reject_bad_shapes():
    for family in FAMILIES:
        with pytest.raises(ValueError):
            make(family).fit(np.empty((0, 3)))


@pytest.fixture(scope="module")
def plant(tmp_path_factory):
    """Six seeded machines over six days, ingested and trained with every family."""
    root = tmp_path_factory.mktemp("plant")
    ws, _ = init_workspace(root / "ws")
    synth.run(root / "export", n_equipment=6, days=6, seed=3, start=START, sensor_faults=False, workspace=ws)
    settings = load_settings(ws.config_path, {})
    ingest.run(ws, settings, root / "export")
    trained = anomaly.train(ws, settings, models=list(FAMILIES))
    anomaly.detect(ws, settings)
    return ws, settings, root / "export" / "truth.csv", trained


def _scored(ws: Workspace, truth_path) -> pl.DataFrame:
    truth = pl.read_csv(truth_path)
    files = status.recordings(ws).select("recording_id", "source_path").with_columns(
        file=pl.col("source_path").str.extract(r"/([^/]+/[^/]+)$"))
    scores = pl.read_parquet(ws.lake / "scores" / "*" / "*" / "*.parquet", hive_partitioning=False)
    return scores.join(files, on="recording_id").join(truth.select("file", "fault_type", "severity"), on="file")


def test_manifest_fields_and_latest_pointer(plant):
    ws, _, _, trained = plant
    assert len(trained.models) == 6 * 3 and not trained.skipped
    scope = ws.artifacts / "models" / "anomaly" / "pump-02"
    pointers = registry.pointers(scope)
    assert set(pointers) == set(FAMILIES)
    for family, version in pointers.items():  # one store per family, one pointer format
        assert json.loads((scope / family / "latest.json").read_text()) == {"version": version, "schema": 1}
    manifest = json.loads((scope / "iforest" / pointers["iforest"] / "manifest.json").read_text())
    for key in ("model_type", "version", "threshold", "threshold_rule", "n_samples", "features", "training_window",
                "created_at", "vibra_version", "params", "files", "quality"):
        assert key in manifest, key
    assert manifest["threshold_rule"] == "quantile:0.98" and manifest["features"][:2] == ["rms", "peak"]
    assert set(manifest["quality"]) == {"outlier_ratio", "score_p50", "score_p95", "score_p99"}
    assert all(len(h) == 64 for h in manifest["files"].values())
    start, end = (datetime.fromisoformat(manifest["training_window"][k]) for k in ("start", "end"))
    assert (end - start).total_seconds() <= 2 * 86_400 + 10  # default baseline: the first 2 days


def test_faulty_windows_score_higher_than_healthy_ones(plant):
    """ROC AUC per family: windows of faults past 30 % severity vs every healthy window after the baseline."""
    ws, _, truth, _ = plant
    df = _scored(ws, truth).filter(pl.col("window_start") >= START + (pl.duration(days=2)))
    healthy = (pl.col("fault_type") == "normal") | (pl.col("severity") == 0)
    faulty = pl.col("severity") > 0.3
    aucs = {}
    for family in FAMILIES:
        part = df.filter((pl.col("model_type") == family) & (healthy | faulty))
        labels = part.select(faulty.cast(int)).to_series().to_numpy()
        aucs[family] = roc_auc_score(labels, part["score"].to_numpy())
    # measured 0.9999 / 1.000 / 1.000 (iforest / hst / baseline, seed 3)
    assert min(aucs.values()) > 0.99, aucs


def test_alarms_on_faulty_machines_not_on_the_healthy_one(plant):
    ws, settings, truth, _ = plant
    episodes = anomaly.episodes(ws, settings, model="iforest")
    by_machine = {}
    for e in episodes:
        by_machine.setdefault(e["equipment_id"], []).append(e)
    assert "motor-01" not in by_machine  # the healthy machine: no alarm episode in 4 days after its baseline
    truth_df = pl.read_csv(truth).with_columns(
        time=pl.col("file").str.extract(r"_(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d)").str.to_datetime(
            "%Y-%m-%dT%H-%M-%S", time_zone="UTC"))
    for eid in truth_df.filter(pl.col("onset").is_not_null())["equipment_id"].unique():
        assert eid in by_machine, eid
        first = min(datetime.fromisoformat(e["start"]) for e in by_machine[eid])
        history = truth_df.filter((pl.col("equipment_id") == eid) & (pl.col("time") <= first))
        severity_at_alarm = history.sort("time")["severity"][-1]
        # caught early: measured 0.05–0.13, and fan-03 0.20 (its imbalance starts at severity 0.20)
        assert severity_at_alarm < 0.22, (eid, first, severity_at_alarm)
    pump = [e for e in by_machine["pump-02"]]
    assert any(c["indicator"] in {"env_bpfo", "kurtosis", "rms", "band_2000_4000_hz", "crest_factor", "peak"}
               for e in pump for c in e["top_indicators"])


def test_threshold_change_is_a_new_version_without_retraining(plant):
    ws, settings, _, _ = plant
    scope = ws.artifacts / "models" / "anomaly" / "fan-03"
    before = registry.pointers(scope)["iforest"]
    _, old = registry.manifest_of(scope, "iforest")
    proc = run_vibra("threshold", "set", "fan-03", "--quantile", "0.995", "--model", "iforest", "--json",
                     "--home", str(ws.root))
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["previous_version"] == before and payload["version"] != before
    _, new = registry.manifest_of(scope, "iforest")
    assert new["files"] == old["files"] and new["weights_version"] == old["weights_version"]
    assert new["threshold"] > old["threshold"] and new["threshold_rule"] == "quantile:0.995"
    z_version = anomaly.set_threshold(ws, settings, "fan-03", model="iforest", quantile=None, value=None, z=4.0)
    assert z_version["threshold_rule"] == "z:4" and z_version["files"] == old["files"]
    with pytest.raises(InputError, match="exactly one"):
        anomaly.set_threshold(ws, settings, "fan-03", model="iforest", quantile=0.9, value=1.0)
    weights = scope / "iforest" / new["version"] / "iforest.pkl"
    assert weights.stat().st_ino == (scope / "iforest" / before / "iforest.pkl").stat().st_ino  # the same bytes, linked


def test_tampered_model_file_is_refused(plant, tmp_path):
    ws, _, _, _ = plant
    scope = ws.artifacts / "models" / "anomaly" / "compressor-05"
    folder, manifest = registry.manifest_of(scope, "baseline")
    path = folder / "baseline.json"
    original = path.read_bytes()
    try:
        path.write_bytes(original.replace(b"[", b"[9.9, ", 1))
        with pytest.raises(CorruptArtifactError, match="does not match the manifest"):
            registry.load(scope, "baseline")
        proc = run_vibra("detect", "--equipment", "compressor-05", "--model", "baseline", "--home", str(ws.root))
        assert proc.returncode == 1 and "refusing to load" in proc.stderr and str(path) in proc.stderr
        assert "vibra doctor --repair" in proc.stderr and "Traceback" not in proc.stderr
    finally:
        path.write_bytes(original)


def test_detect_scores_only_new_windows_and_gc_keeps_latest(plant):
    ws, settings, _, _ = plant
    again = anomaly.detect(ws, settings, equipment=["motor-01"], models=["iforest"])
    assert again.scored == 0
    # at least one version to collect, whatever ran before: a threshold set again is a new version
    anomaly.set_threshold(ws, settings, "fan-03", model="iforest", quantile=None, value=None, z=4.0)
    family = ws.artifacts / "models" / "anomaly" / "fan-03" / "iforest"
    before = sorted(p.name for p in family.iterdir() if p.is_dir())
    assert len(before) >= 2
    removed = anomaly.gc(ws, keep=1)
    for scope in (ws.artifacts / "models" / "anomaly").iterdir():
        for family_name, version in registry.pointers(scope).items():
            assert (scope / family_name / version / "manifest.json").exists()
    after = sorted(p.name for p in family.iterdir() if p.is_dir())
    assert after == [registry.pointers(family.parent)["iforest"]]  # the latest kept, every older one collected
    assert removed and all("fan-03" in r for r in removed) and len(removed) >= len(before) - 1


def test_hst_update_scores_and_learns_only_new_windows(tmp_path):
    """``detect --update`` scores and learns the windows that arrived since, once: not the history
    again under each new version."""
    import shutil

    ws, _ = init_workspace(tmp_path / "ws")
    export = tmp_path / "export"
    synth.run(export, n_equipment=1, days=3, seed=5, start=START, sensor_faults=False, workspace=ws)
    (eid,) = [p.name for p in export.iterdir() if p.is_dir()]
    later = tmp_path / "later"
    later.mkdir()
    cut = START + timedelta(days=2.5)
    for path in sorted((export / eid).iterdir()):
        stamp = datetime.strptime(path.name.split("_", 1)[1][:19], "%Y-%m-%dT%H-%M-%S").replace(tzinfo=timezone.utc)
        if stamp >= cut:
            shutil.move(path, later / path.name)
    settings = load_settings(ws.config_path, {})
    ingest.run(ws, settings, export)
    anomaly.train(ws, settings, models=["hst"])
    scope = ws.artifacts / "models" / "anomaly" / eid
    first = registry.pointers(scope)["hst"]
    n_old = anomaly.detect(ws, settings, models=["hst"]).scored
    assert n_old == anomaly.read_features(ws, eid).height > 0

    nothing = anomaly.detect(ws, settings, models=["hst"], update=True)
    assert nothing.scored == 0 and nothing.updated == [] and registry.pointers(scope)["hst"] == first

    for path in later.iterdir():
        shutil.move(path, export / eid / path.name)
    ingest.run(ws, settings, export)
    n_new = anomaly.read_features(ws, eid).height - n_old
    assert n_new > 0
    updated = anomaly.detect(ws, settings, models=["hst"], update=True)
    assert updated.scored == n_new
    (second,) = updated.updated
    _, manifest = registry.manifest_of(scope, "hst")
    assert manifest["version"] == second and manifest["updated_from"] == first
    assert manifest["updated_with_windows"] == n_new and manifest["online_learned_windows"] == n_new
    assert anomaly.lineage(manifest) == [first, second] == anomaly.chain_of(ws, eid, "hst", second)

    # the next update has nothing new: the history is not scored or learned again under the new version
    again = anomaly.detect(ws, settings, models=["hst"], update=True)
    assert again.scored == 0 and again.updated == [] and registry.pointers(scope)["hst"] == second
    scores = anomaly.read_scores(ws, eid)
    assert scores.height == n_old + n_new
    assert scores.select(anomaly.KEYS).unique().height == scores.height  # no window scored twice
    assert scores.group_by("model_version").len().sort("model_version").rows() == [(first, n_old + n_new)]
    # alarm episodes of the updated version read the chain's scores (no error, same machine)
    assert all(e["equipment_id"] == eid for e in anomaly.episodes(ws, settings, model="hst"))


def test_cwru_normal_baseline_flags_every_fault_file(tmp_path, real_data):
    """Trained on the first half of the normal recording (decimated 48 → 12 kHz), the second half
    stays quiet and the fault files alarm (k = 3 of m = 5 windows, per channel)."""
    ws, _ = init_workspace(tmp_path / "ws")
    ws.config_path.write_text(CWRU_TOML)
    names = sorted(p.name for p in (real_data / "cwru_12k_de").glob("*.mat"))
    names.remove("Normal_0.mat")
    src = stage([real_data / "cwru_12k_de" / n for n in ["Normal_0.mat", *names]], tmp_path / "src" / "cwru-de",
                hour_apart=True)  # the files carry no time: the normal one first
    settings = load_settings(ws.config_path, {})
    ingest.run(ws, settings, src)
    feats = anomaly.read_features(ws, "cwru-de")
    first_hour = feats.filter(pl.col("window_start") < datetime(2026, 1, 1, 1, tzinfo=timezone.utc))
    assert set(first_hour["sample_rate_hz"]) == {12_000.0}  # the 48 kHz file was decimated
    normal = feats.filter(pl.col("window_start") < datetime(2026, 1, 1, 1, tzinfo=timezone.utc))["window_start"].sort()
    mid = normal[len(normal) // 2]
    anomaly.train(ws, settings, models=["iforest"], since=normal[0], until=mid)
    anomaly.detect(ws, settings)
    files = status.recordings(ws).select("recording_id", "source_path").with_columns(
        file=pl.col("source_path").str.extract(r"([^/]+)\.mat$"))
    scores = (pl.read_parquet(ws.lake / "scores" / "*" / "*" / "*.parquet", hive_partitioning=False)
              .join(files, on="recording_id").sort("channel", "window_start", "window_index")
              .with_columns(alarm=pl.col("is_anomaly").cast(pl.Int32).rolling_sum(5, min_samples=1).over("channel") >= 3))
    second_half = scores.filter((pl.col("file") == "Normal_0") & (pl.col("window_start") >= mid))
    # measured 0.071 (4 of 56 windows); 0.036 before the one envelope module (issue 30) counted envelope bin 3 in
    # the floor of env_ftf (up to 10 % higher on these files): one isolated 3-of-5 episode more on Normal_0
    assert second_half["alarm"].mean() < 0.08
    share = dict(scores.filter(pl.col("file") != "Normal_0").group_by("file").agg(pl.col("alarm").mean()).iter_rows())
    for name, value in share.items():
        # measured: ≥ 0.99 for every file but B007_0 / B007_1 (0.92 / 0.94): small ball faults are the hard case
        assert value >= (0.9 if name.startswith("B007") else 0.98), (name, value)


def test_fleet_model_across_machines(plant):
    ws, settings, truth, _ = plant
    result = anomaly.train(ws, settings, models=["baseline"], fleet=True)
    (model,) = result.models
    assert model["scope"] == "_fleet"
    _, manifest = registry.manifest_of(ws.artifacts / "models" / "anomaly" / "_fleet", "baseline")
    assert manifest["fleet"] and manifest["standardise_by"] == ["equipment_id", "channel"]
    assert set(manifest["equipment"]) == {"motor-01", "pump-02", "fan-03", "gearbox-04", "compressor-05", "motor-06"}
    assert "pump-02|x" in manifest["standardisation"]
    detected = anomaly.detect(ws, settings, models=["baseline"])
    assert detected.scored > 0
    df = _scored(ws, truth).filter((pl.col("scope") == "_fleet") & (pl.col("window_start") >= START + pl.duration(days=2)))
    healthy = df.filter((pl.col("fault_type") == "normal") | (pl.col("severity") == 0))
    faulty = df.filter(pl.col("severity") > 0.3)
    assert faulty["is_anomaly"].mean() > 0.95 and healthy["is_anomaly"].mean() < 0.02  # measured 0.968 and 0.0
