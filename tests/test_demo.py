"""The end-to-end demo, as the README runs it."""

from __future__ import annotations

import json

from conftest import run_vibra


def test_demo_builds_a_fresh_workspace(tmp_path):
    home = tmp_path / "demo"
    proc = run_vibra("demo", "--home", str(home), timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert str(home) in proc.stdout and "features" in proc.stdout
    index = home / "reports" / "index.html"
    assert f"report:      {index}" in proc.stdout and index.exists()
    assert (home / "reports" / "machines" / "pump-02.html").exists()
    assert (home / "vibra.toml").exists() and (home / "export" / "truth.csv").exists()
    status = json.loads(run_vibra("status", "--json", "--home", str(home), check=True).stdout)
    assert status["completed"] >= 4 * 120 - 5 and status["features_total"] > 2500
    assert {e["equipment_id"] for e in status["equipment"]} == {"motor-01", "pump-02", "fan-03", "gearbox-04"}
    episodes = json.loads(run_vibra("anomalies", "--json", "--home", str(home), check=True).stdout)["episodes"]
    # the seeded faults (outer race, imbalance, inner race) alarm; the healthy motor does not
    assert {e["equipment_id"] for e in episodes} == {"pump-02", "fan-03", "gearbox-04"}
    assert all(e["top_indicators"] for e in episodes)
    # clustered, one recording per fault labelled from truth.csv, the kNN assigned the rest
    clusters = json.loads(run_vibra("clusters", "--json", "--home", str(home), check=True).stdout)
    assert clusters["n_clusters"] >= 2 and any(c["label"] for c in clusters["clusters"])
    rows = json.loads(run_vibra("defects", "assignments", "--equipment", "pump-02", "--json", "--home", str(home),
                                check=True).stdout)["assignments"]
    newest = max(rows, key=lambda r: r["first"])
    assert max(newest["windows"], key=newest["windows"].get) == "bearing_outer_race"
    # RUL learned from one earlier life of each faulty machine (export/maintenance_events.csv, imported)
    assert "pump-02: RUL, planning (early): " in proc.stdout and "RUL pump-02: P50" not in proc.stdout
    rul = json.loads(run_vibra("rul", "--json", "--home", str(home), check=True).stdout)
    assert rul["library"]["n_failed"] == 3 and rul["library"]["trusted"]
    by_id = {m["equipment_id"]: m for m in rul["machines"]}
    for eid in ("pump-02", "fan-03", "gearbox-04"):  # degrading: past onset, a degradation model answers
        assert by_id[eid]["status"] == "ok" and by_id[eid]["model"] != "survival_prior"
        assert 0 <= by_id[eid]["p10_s"] <= by_id[eid]["p50_s"] <= by_id[eid]["p90_s"]
    assert "RUL, planning (early)" in index.read_text() and "RUL P50" not in index.read_text()
    # the healthy motor has no onset: its answer is the survival prior of the other machines' lives, said as such
    assert by_id["motor-01"]["basis"] == "prior_no_onset" and by_id["motor-01"]["model"] == "survival_prior"
    assert "motor-01: no degradation yet — typical remaining life" in proc.stdout
    assert "no degradation yet" in index.read_text() and "survival prior P50" not in index.read_text()
    motor = (home / "reports" / "machines" / "motor-01.html").read_text()
    assert "no degradation yet" in motor and "RUL, planning (early)" not in motor
    assert 'id="rul"' in (home / "reports" / "machines" / "pump-02.html").read_text()
    assert (home / "artifacts" / "readiness" / "latest.json").exists()
    assert "vibra_readiness_status" in (home / "artifacts" / "metrics" / "vibra.prom").read_text()


def test_demo_json(tmp_path):
    proc = run_vibra("demo", "--home", str(tmp_path / "d"), "--equipment", "2", "--days", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["workspace"] == str(tmp_path / "d")
    assert payload["ingest"]["new"] == payload["status"]["completed"] > 0
    assert len(payload["train"]["models"]) == 2 * 3 and payload["detect"]["scored"] > 0
    # one faulty machine, one earlier life: the RUL library is too small to trust, and says so
    assert payload["rul"]["library"]["n_failed"] == 1 and not payload["rul"]["library"]["trusted"]
    assert {m["status"] for m in payload["rul"]["machines"]} == {"library_too_small"}
