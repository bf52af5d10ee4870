"""Corruption is reported, never spread: damaged lake files and artifacts are named, never read as absent.

Every test works on its own copy of one small ingested, trained and scored workspace (real DuckDB,
real Parquet, real model files), damages it the way a full disk, a cut copy or a hand edit would,
and checks what ``doctor``, ``gc`` and the other commands do.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from vibra.errors import CorruptArtifactError, LakeCorruptError
from vibra.settings import load_settings
from vibra.storage import artifacts, catalog, lake
from vibra.workspace import Workspace, init_workspace
from vibra_pipelines import anomaly, doctor, ingest, maintain, readiness, status, synth

from conftest import run_vibra

START = datetime(2026, 3, 1, tzinfo=timezone.utc)
REPAIR_HINT = "vibra doctor --repair"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Two machines, one day, ingested; baseline models trained twice (two versions each), scored."""
    root = tmp_path_factory.mktemp("corruption")
    ws, _ = init_workspace(root / "ws")
    export = root / "export"
    synth.run(export, n_equipment=2, days=1.0, seed=3, start=START, sensor_faults=False, workspace=ws)
    settings = load_settings(ws.config_path, {})
    ingest.run(ws, settings, export)
    anomaly.train(ws, settings, models=["baseline"])
    anomaly.train(ws, settings, models=["baseline"])
    anomaly.detect(ws, settings, models=["baseline"])
    readiness.run(ws, settings)
    return ws.root


@pytest.fixture
def ws(base, tmp_path) -> Workspace:
    shutil.copytree(base, tmp_path / "ws")
    return Workspace(tmp_path / "ws")


def _settings(ws):
    return load_settings(ws.config_path, {})


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # what a full disk or a cut copy leaves: no footer


def _one_line_naming(proc, path: Path) -> None:
    """The user's view of a damaged file: exit 1, one line on stderr naming it and the fix, no traceback."""
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    # the run log (a failed run is logged at ERROR) may stand beside it; the message is one line
    lines = [line for line in proc.stderr.strip().splitlines() if " ERROR vibra: run failed" not in line]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert str(path) in lines[0] and REPAIR_HINT in lines[0], lines[0]
    assert "Traceback" not in proc.stderr and "magic" not in proc.stderr.lower()


def _machines(ws) -> list[str]:
    return sorted(p.name for p in (ws.artifacts / "models" / "anomaly").iterdir())


# -- read_json and pointers --------------------------------------------------------------------------

def test_read_json_raises_on_corrupt_content_and_is_none_only_when_missing(tmp_path):
    assert lake.read_json(tmp_path / "absent.json") is None
    for text in (b'{"version": "2026', b"\xff\xfe not utf-8", b""):
        (tmp_path / "bad.json").write_bytes(text)
        with pytest.raises(CorruptArtifactError, match="bad.json: not valid JSON"):
            lake.read_json(tmp_path / "bad.json")


def test_a_corrupt_pointer_never_reads_as_no_version(tmp_path):
    store = artifacts.VersionedStore(tmp_path / "kind", "toy")
    assert store.latest() is None  # no pointer yet: truly nothing
    v = store.put(artifacts.new_version("a"), {"n": 1})["version"]
    assert json.loads(store.pointer.read_text()) == {"version": v, "schema": 1}
    for text in ('{"version": "20', '["x"]', '{"schema": 1}', '{"version": "../up", "schema": 1}'):
        store.pointer.write_text(text)
        with pytest.raises(CorruptArtifactError, match="latest.json"):
            store.latest()
    store.pointer.write_text(json.dumps({"version": v}))  # an older vibra's shape
    with pytest.raises(CorruptArtifactError, match="vibra migrate"):
        store.latest()


def test_one_version_naming_function_sorts_by_age():
    early = artifacts.new_version("x", now=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc))
    late = artifacts.new_version("a", now=datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=timezone.utc))
    assert early == "20260102T030405000006Z-x" and sorted([late, early]) == [early, late]
    assert artifacts.new_version() != artifacts.new_version()  # random tag: no two alike


def _toy_store(tmp_path, n: int, **kw) -> tuple[artifacts.VersionedStore, list[str]]:
    store = artifacts.VersionedStore(tmp_path / "toy", "toy", **kw)
    versions = []
    for k in range(n):
        with store.staging() as tmp:
            (tmp / "weights.bin").write_bytes(bytes([k]) * 100)
            (tmp / "sub").mkdir()
            (tmp / "sub" / "extra.txt").write_text(str(k))
            versions.append(store.commit(tmp, artifacts.new_version(f"v{k}"), {"k": k})["version"])
    return store, versions


def test_store_commit_hashes_every_file_and_load_verifies(tmp_path):
    store, (v0, v1) = _toy_store(tmp_path, 2)
    assert store.latest() == v1 and store.versions() == [v1, v0]
    assert set(store.read_manifest(v1)["files"]) == {"weights.bin", "sub/extra.txt"}
    folder, manifest = store.load()
    assert folder == store.root / v1 and manifest["k"] == 1
    (folder / "sub" / "extra.txt").write_text("edited")
    with pytest.raises(CorruptArtifactError, match="extra.txt: sha256 .* does not match"):
        store.load()
    assert store.newest_verifying() == v0
    (store.root / v0 / "weights.bin").unlink()
    assert store.problems(v0) == [(store.root / v0 / "weights.bin", "listed in the manifest but missing")]
    assert not list(store.root.glob(".tmp-*"))  # staging folders never stay behind


def test_gc_plan_keeps_newest_pointed_and_last_verifying(tmp_path):
    store, v = _toy_store(tmp_path, 5)
    assert store.gc_plan(2) == [v[2], v[1], v[0]]
    store.point(v[0])
    assert store.gc_plan(2) == [v[2], v[1]]  # the pointed one stays
    store.point(v[4])
    (store.root / v[4] / "weights.bin").write_bytes(b"edited")
    (store.root / v[3] / "weights.bin").write_bytes(b"edited")
    assert store.gc_plan(1) == [v[3], v[1], v[0]]  # v[2]: the newest that verifies
    assert artifacts.VersionedStore(store.root, "toy", collect=False).gc_plan(1) == []
    store.pointer.write_text("{")
    with pytest.raises(CorruptArtifactError, match="latest.json"):
        store.gc_plan(1)


# -- damaged lake files --------------------------------------------------------------------------------

def test_truncated_parquet_is_a_doctor_finding_and_repair_reingests(ws):
    victim = sorted(ws.lake.glob("features/date=*/equipment=*/part-*.parquet"))[0]
    _truncate(victim)
    home = ["--home", str(ws.root)]
    found = run_vibra("doctor", *home)
    assert found.returncode == 1 and "Traceback" not in found.stderr, found.stderr
    assert "damaged_lake_files" in found.stdout and str(victim) in found.stdout, found.stdout
    report = json.loads(run_vibra("doctor", "--json", *home).stdout)
    checks = {f["check"]: f for f in report["findings"]}
    assert checks["damaged_lake_files"]["count"] == 1
    assert "completed_without_windows" not in checks  # explained by the damaged file, not blamed twice

    fixed = json.loads(run_vibra("doctor", "--repair", "--json", *home, check=True).stdout)
    assert fixed["ok"]
    assert not victim.exists()
    assert (ws.data / doctor.QUARANTINE / victim.relative_to(ws.lake)).read_bytes()  # kept, not deleted
    prefix = victim.name.removeprefix("part-").removesuffix(".parquet")
    rows = catalog.query(ws.catalog_path, f"SELECT status FROM {catalog.CURRENT} c WHERE recording_id LIKE ?",
                         [prefix + "%"])
    assert rows == [("pending",)]
    again = ingest.run(ws, _settings(ws), Path(catalog.query(
        ws.catalog_path, f"SELECT source_path FROM {catalog.CURRENT} c WHERE recording_id LIKE ?",
        [prefix + "%"])[0][0]).parent.parent)
    assert again.new == 1 and again.failed == 0, again
    assert victim.exists() and lake.damaged(victim) is None
    assert json.loads(run_vibra("doctor", "--json", *home, check=True).stdout)["findings"] == []


@pytest.mark.parametrize("command", [["status"], ["report"], ["detect", "--model", "baseline"],
                                     ["maintain", "compact"]])
def test_commands_over_a_truncated_features_file_give_one_line(ws, command):
    victim = sorted(ws.lake.glob("features/date=*/equipment=*/part-*.parquet"))[0]
    if command[0] == "maintain":  # compaction reads a partition only when it has files to merge
        shutil.copy(sorted(ws.lake.glob("features/date=*/equipment=*/part-*.parquet"))[1],
                    victim.with_name("part-copy.parquet"))
        victim = victim.with_name("part-copy.parquet")
        lake.commit(ws.table("features"), add=[victim])
    _truncate(victim)
    _one_line_naming(run_vibra(*command, "--home", str(ws.root)), victim)


@pytest.mark.parametrize("command", [["anomalies", "--model", "baseline"], ["report"]])
def test_commands_over_a_truncated_scores_file_give_one_line(ws, command):
    victim = sorted(ws.lake.glob("scores/date=*/equipment=*/*.parquet"))[0]
    _truncate(victim)
    _one_line_naming(run_vibra(*command, "--home", str(ws.root)), victim)


def test_lake_reading_names_the_file_and_passes_other_errors_through(ws):
    files = lake.partition_files(ws.table("features"))
    _truncate(files[-1])
    with pytest.raises(LakeCorruptError) as caught:
        lake.read_frame(files)
    assert caught.value.path == str(files[-1]) and REPAIR_HINT in str(caught.value)
    with pytest.raises(ZeroDivisionError):  # not a damaged-file error: untouched
        with lake.reading(files[:-1]):
            raise ZeroDivisionError
    with pytest.raises(LakeCorruptError):
        status.run(ws)


# -- damaged artifacts -------------------------------------------------------------------------------

def test_corrupt_pointer_and_corrupt_manifest_are_both_reported_and_repaired(ws):
    first, second = _machines(ws)
    pointer = ws.artifacts / "models" / "anomaly" / first / "baseline" / "latest.json"
    pointer.write_text('{"version": "2026')                                   # cut short
    store = artifacts.store(ws.artifacts, "anomaly", second, "baseline")
    live = store.latest()
    manifest = store.root / live / "manifest.json"
    manifest.write_text(manifest.read_text()[:40])                            # cut short
    home = ["--home", str(ws.root)]

    _one_line_naming(run_vibra("detect", "--model", "baseline", *home), pointer)
    _one_line_naming(run_vibra("anomalies", "--model", "baseline", "--equipment", second, *home), manifest)

    proc = run_vibra("doctor", *home)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    report = json.loads(run_vibra("doctor", "--json", *home).stdout)
    checks = {f["check"]: f for f in report["findings"]}
    assert str(pointer) in checks["damaged_pointer"]["examples"][0]
    assert str(manifest) in checks["damaged_artifact"]["examples"][0]

    fixed = json.loads(run_vibra("doctor", "--repair", "--json", *home, check=True).stdout)
    assert fixed["ok"]
    older = [v for v in store.versions() if v != live]
    assert store.latest() == older[0]  # back to the newest version that verifies
    assert artifacts.store(ws.artifacts, "anomaly", first, "baseline").latest() is not None
    run_vibra("detect", "--model", "baseline", *home, check=True)


def test_gc_keeps_the_last_version_that_verifies(ws):
    first, second = _machines(ws)
    edited = artifacts.store(ws.artifacts, "anomaly", first, "baseline")
    intact = edited.versions()[1]
    folder = edited.root / edited.latest()
    (folder / "baseline.json").write_text((folder / "baseline.json").read_text().replace("[", "[9.9, ", 1))
    assert not edited.verifies(edited.latest()) and edited.verifies(intact)
    other = artifacts.store(ws.artifacts, "anomaly", second, "baseline")

    proc = run_vibra("maintain", "gc", "--keep", "1", "--json", "--home", str(ws.root), check=True)
    removed = json.loads(proc.stdout)["removed"]["anomaly"]
    assert edited.versions() == sorted([edited.latest(), intact], reverse=True)  # the intact one stays
    assert len(other.versions()) == 1 and len(removed) == 1


def test_gc_checks_every_store_before_deleting_anything(ws):
    first, second = _machines(ws)
    before = {s.root: s.versions() for s in artifacts.stores(ws.artifacts)}
    (ws.artifacts / "models" / "anomaly" / second / "baseline" / "latest.json").write_text("{")
    proc = run_vibra("maintain", "gc", "--keep", "1", "--home", str(ws.root))
    _one_line_naming(proc, ws.artifacts / "models" / "anomaly" / second / "baseline" / "latest.json")
    assert "nothing was deleted" in proc.stderr
    assert {s.root: s.versions() for s in artifacts.stores(ws.artifacts)} == before


def test_forecast_pointer_is_checked_by_doctor_and_gc(ws):
    """The bug this layer fixes: doctor and gc read the forecast pointer (``{"forecast": v}``) with
    ``.get("version")``, got nothing, and never checked it — a dangling forecast pointer went unseen and
    gc could delete the forecast ``latest`` named."""
    store = artifacts.store(ws.artifacts, "forecast")
    versions = [store.put(artifacts.new_version(f"f{k}"), {"series": []})["version"] for k in range(3)]
    store.point(versions[0])  # the oldest is live (e.g. pointed back by hand)
    settings = _settings(ws)
    removed = maintain.gc(ws, settings, keep=1)["forecast"]
    assert store.versions() == [versions[2], versions[0]] and len(removed) == 1

    shutil.rmtree(store.root / versions[0])
    checks = {f["check"]: f for f in doctor.check(ws, settings)["findings"]}
    assert str(store.pointer) in checks["dangling_latest_pointer"]["examples"][0]
    assert doctor.check(ws, settings, repair=True)["ok"]
    assert store.latest() == versions[2]


def test_a_new_kind_registered_in_one_place_is_checked_and_collected(ws, monkeypatch):
    monkeypatch.setitem(artifacts.KINDS, "toy", artifacts.Kind("toy", "models/toy"))
    store = artifacts.store(ws.artifacts, "toy")
    versions = [store.put(artifacts.new_version(f"t{k}"), {"k": k})["version"] for k in range(3)]
    settings = _settings(ws)
    store.pointer.write_text("not json")
    checks = {f["check"]: f for f in doctor.check(ws, settings)["findings"]}
    assert str(store.pointer) in checks["damaged_pointer"]["examples"][0]
    with pytest.raises(CorruptArtifactError, match="nothing was deleted"):
        maintain.gc(ws, settings, keep=1)
    assert store.versions() == versions[::-1]
    assert doctor.check(ws, settings, repair=True)["ok"] and store.latest() == versions[2]
    removed = maintain.gc(ws, settings, keep=1)
    assert len(removed["toy"]) == 2 and store.versions() == [versions[2]]


# -- migration of the old pointer shapes -------------------------------------------------------------

def _downgrade(ws) -> dict:
    """Rewrite a workspace into the layout of the previous vibra (four pointer shapes); returns what it had."""
    had = {}
    anomaly_root = ws.artifacts / "models" / "anomaly"
    for scope in anomaly_root.iterdir():
        old = {}
        for family in [p for p in scope.iterdir() if p.is_dir()]:
            old[family.name] = json.loads((family / "latest.json").read_text())["version"]
            for version in [p for p in family.iterdir() if p.is_dir()]:
                version.rename(scope / version.name)
            (family / "latest.json").unlink()
            family.rmdir()
        (scope / "latest.json").write_text(json.dumps(old))          # {model_type: v}
        had[scope.name] = old
    forecast = artifacts.store(ws.artifacts, "forecast")
    fv = forecast.put(artifacts.new_version("f"), {"series": []})["version"]
    forecast.pointer.write_text(json.dumps({"forecast": fv}))        # {"forecast": v}
    had["forecast"] = fv
    emb = ws.artifacts / "models" / "embedding" / "latest.json"
    had["embedding"] = json.loads(emb.read_text())["version"]
    emb.write_text(json.dumps({"version": had["embedding"]}))        # {"version": v}
    ready = artifacts.store(ws.artifacts, "readiness")
    report = ready.latest_manifest()
    shutil.rmtree(ready.root)
    ready.root.mkdir()
    ready.pointer.write_text(json.dumps(report))                     # the whole report
    had["readiness"] = report["status"]
    (ws.artifacts / artifacts.LAYOUT_MARK).unlink(missing_ok=True)
    return had


def test_old_pointer_shapes_are_migrated_once_and_idempotently(ws):
    had = _downgrade(ws)
    home = ["--home", str(ws.root)]
    first = json.loads(run_vibra("migrate", "--json", *home, check=True).stdout)  # opening migrates, then migrate
    assert first["artifacts_rewritten"] == []  # already done on open
    assert (ws.artifacts / artifacts.LAYOUT_MARK).exists()
    for scope in _machines(ws):
        assert not (ws.artifacts / "models" / "anomaly" / scope / "latest.json").exists()
        for family, version in had[scope].items():
            assert artifacts.store(ws.artifacts, "anomaly", scope, family).latest() == version
    assert artifacts.store(ws.artifacts, "forecast").latest() == had["forecast"]
    assert artifacts.store(ws.artifacts, "embedding").latest() == had["embedding"]
    assert artifacts.store(ws.artifacts, "readiness").latest_manifest()["status"] == had["readiness"]
    for s in artifacts.stores(ws.artifacts):
        assert s.latest() is None or s.verifies(s.latest()), s.root
    assert artifacts.migrate(ws.artifacts) == []  # idempotent
    assert json.loads(run_vibra("doctor", "--json", *home, check=True).stdout)["findings"] == []
    run_vibra("detect", "--model", "baseline", *home, check=True)  # the moved models load and verify


def test_migration_without_the_mark_and_after_a_crash_midway(ws):
    had = _downgrade(ws)
    scope = _machines(ws)[0]
    # a crash after one folder moved but before the pointers were written: the old pointer is still there
    family_dir = ws.artifacts / "models" / "anomaly" / scope / "baseline"
    family_dir.mkdir()
    live = had[scope]["baseline"]
    (ws.artifacts / "models" / "anomaly" / scope / live).rename(family_dir / live)
    changed = artifacts.migrate(ws.artifacts)
    assert changed and artifacts.store(ws.artifacts, "anomaly", scope, "baseline").latest() == had[scope]["baseline"]
    assert artifacts.migrate(ws.artifacts) == []


def test_migration_of_a_damaged_old_pointer_points_each_family_at_its_newest_intact_version(ws):
    had = _downgrade(ws)
    first, second = _machines(ws)
    (ws.artifacts / "models" / "anomaly" / first / "latest.json").write_text('{"baseline": "2026')
    newest = artifacts.store(ws.artifacts, "anomaly", second, "baseline")  # not yet migrated: versions at scope
    assert newest.versions() == []
    edited = sorted((ws.artifacts / "models" / "anomaly" / first).glob("*/baseline.json"))[-1]
    edited.write_text(edited.read_text().replace("[", "[9.9, ", 1))  # the newest of `first` no longer verifies
    home = ["--home", str(ws.root)]
    assert json.loads(run_vibra("doctor", "--json", *home, check=True).stdout)["ok"]  # opening migrated it
    store = artifacts.store(ws.artifacts, "anomaly", first, "baseline")
    assert store.latest() == store.versions()[1] != had[first]["baseline"]
    assert artifacts.store(ws.artifacts, "anomaly", second, "baseline").latest() == had[second]["baseline"]


# -- a file the log names that is gone, or overwritten by a valid Parquet of another schema ------------

@pytest.mark.parametrize("damage", ["gone", "other_schema"])
def test_a_gone_or_overwritten_lake_file_is_one_line_and_doctor_repairs_it(ws, damage):
    import polars as pl

    victim = sorted(ws.lake.glob("features/date=*/equipment=*/part-*.parquet"))[0]
    if damage == "gone":
        victim.unlink()
    else:  # a valid Parquet file, of another table's shape: status must not silently count fewer windows
        pl.DataFrame({"x": [1, 2, 3]}).write_parquet(victim)
    home = ["--home", str(ws.root)]
    _one_line_naming(run_vibra("status", *home), victim)
    report = doctor.check(ws, _settings(ws))  # no crash in its checks (the sort of orphans met None ids)
    checks = {f["check"]: f for f in report["findings"]}
    assert str(victim) in checks["damaged_lake_files"]["examples"][0]
    assert ("gone" if damage == "gone" else "changed since its commit") in checks["damaged_lake_files"]["examples"][0]
    fixed = doctor.check(ws, _settings(ws), repair=True)
    assert fixed["ok"], fixed
    if damage == "other_schema":
        assert (ws.data / doctor.QUARANTINE / victim.relative_to(ws.lake)).exists()  # kept, not deleted
    run_vibra("status", *home, check=True)
