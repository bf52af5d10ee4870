"""Progress on long commands (issue 19 item 6): the pipelines tell a ``progress`` callback how far
they are — (done, total, what) per machine, series batch or model, or stage names for ``cluster``
and the kNN retrain — and print nothing themselves; ``--json`` output stays pure JSON."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from conftest import run_vibra

from vibra.settings import load_settings
from vibra.workspace import init_workspace
from vibra_pipelines import anomaly, cluster, defects, forecast, ingest, rul, status, synth

START = datetime(2026, 2, 1, tzinfo=timezone.utc)
MACHINES = 3


@pytest.fixture(scope="module")
def plant(tmp_path_factory):
    root = tmp_path_factory.mktemp("progress")
    ws, _ = init_workspace(root / "ws")
    synth.run(root / "export", n_equipment=MACHINES, days=2, seed=11, start=START, sensor_faults=False, workspace=ws)
    text = ws.config_path.read_text()  # the template has every (commented) section: set the keys in them
    for header, lines in (("[cluster]\n", "umap_components = 0\n"), ("[anomaly]\n", "baseline_days = 1\n"),
                          ("[forecast]\n", "min_points = 16\nfreq_s = 3600\n")):
        text = text.replace(header, header + lines, 1)
    ws.config_path.write_text(text)
    settings = load_settings(ws.config_path, {})
    ingest.run(ws, settings, root / "export")
    return ws, settings


class Ticks(list):
    def __call__(self, done, total, what=""):
        self.append((done, total, what))


def _sensible(ticks: Ticks, per: int | None = None) -> None:
    """Each tick within 0..total, done never going back within one phase, and a final done == total."""
    assert ticks, "no progress reported"
    for done, total, _ in ticks:
        assert 0 <= done <= total
    assert ticks[-1][0] == ticks[-1][1]
    if per is not None:
        assert [t for t in ticks if t[1] == per], ticks


def test_train_and_detect_tick_per_machine(plant):
    ws, settings = plant
    machines = anomaly.equipment_ids(ws)
    assert len(machines) == MACHINES
    ticks = Ticks()
    result = anomaly.train(ws, settings, models=["iforest"], progress=ticks)
    assert result.models
    _sensible(ticks, MACHINES)
    assert [w for _, _, w in ticks[:-1]] == machines  # one tick per machine, named, then the end
    ticks = Ticks()
    anomaly.detect(ws, settings, progress=ticks)
    _sensible(ticks, MACHINES)
    assert [d for d, _, _ in ticks] == list(range(MACHINES + 1))


def test_forecast_ticks_per_machine_then_per_model_batch(plant):
    ws, settings = plant
    ticks = Ticks()
    result = forecast.run(ws, settings, indicators=["rms"], progress=ticks)
    assert result.series
    reads = [t for t in ticks if t[2].startswith("reading ")]
    assert [d for d, _, _ in reads] == list(range(MACHINES)) and {t for _, t, _ in reads} == {MACHINES}
    fits = [t for t in ticks if " series" in t[2]]
    assert fits and fits[-1][2].startswith("Naive on ")  # the yardstick is fitted last
    assert [d for d, _, _ in fits] == list(range(len(fits)))
    _sensible(ticks)


def test_rul_ticks_per_machine(plant):
    ws, settings = plant
    ticks = Ticks()
    result = rul.run(ws, settings, progress=ticks)
    assert len(result.machines) == MACHINES
    _sensible(ticks, MACHINES)
    assert [w for _, _, w in ticks if w and not w.startswith("reading ")] == anomaly.equipment_ids(ws)


def test_report_ticks_per_machine_then_the_fleet_pages(plant, tmp_path):
    from vibra_pipelines import report

    ws, settings = plant
    ticks = Ticks()
    report.run(ws, settings, out=tmp_path / "out", progress=ticks)
    _sensible(ticks, MACHINES + 1)
    assert [w for _, _, w in ticks[:MACHINES]] == anomaly.equipment_ids(ws)  # a tick per machine's page, named
    assert ticks[MACHINES][2] == "fleet, clusters and alarm pages"


def test_cluster_and_label_report_their_stages(plant):
    ws, settings = plant
    stages: list[str] = []
    result = cluster.run(ws, settings, min_cluster_size=10, progress=stages.append)
    assert result.n_clusters >= 1
    assert stages[0] == "reading embeddings"
    assert any(s.startswith("HDBSCAN") for s in stages)
    assert "writing the clusters table" in stages
    stages.clear()
    rec = status.recordings(ws)["source_path"][0]
    out = defects.label_recording(ws, settings, rec.rsplit("/", 1)[-1], "imbalance", who="test",
                                  progress=stages.append)
    assert stages[0] == "reading the windows' embeddings for the defect kNN"
    assert any(s.startswith("retraining the defect kNN") for s in stages) == out["retrain"]["retrained"]


def test_json_output_stays_pure_json(plant):
    """Piped (no terminal): no bar, no stage line; stdout parses whole and stderr is empty."""
    ws, _ = plant
    for args in (("detect", "--json"), ("rul", "--json"), ("cluster", "--min-cluster-size", "10", "--json"),
                 ("report", "--json")):
        proc = run_vibra(*args, cwd=ws.config_path.parent, check=True)
        payload = json.loads(proc.stdout)
        assert payload["command"] == args[0]
        assert proc.stderr.strip() == "", proc.stderr
