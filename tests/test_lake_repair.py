"""A damaged Delta log is one line on every command, and ``vibra doctor --repair`` brings every window back.

Each test works on its own copy of one small workspace whose ``features`` table has commits before and
after a checkpoint (real delta-rs logs, real Parquet, real DuckDB). It damages one kind of log file the
way a full disk, a cut copy or a hand edit would, moves the source export away (so a re-ingest cannot
hide a loss), and checks that the commands name the damage without a traceback and that the repair
restores the very same windows, keeping the damaged log aside.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from vibra.settings import load_settings
from vibra.storage import catalog, deltalog, lake, repair
from vibra.workspace import Workspace, init_workspace
from vibra_pipelines import doctor, ingest, synth

from conftest import run_vibra

START = datetime(2026, 3, 1, tzinfo=timezone.utc)
HINT = "vibra doctor --repair"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Three machines ingested one after the other, a checkpoint of ``features`` after the first."""
    from deltalake import DeltaTable

    root = tmp_path_factory.mktemp("lake-repair")
    ws, _ = init_workspace(root / "ws")
    export = root / "export"
    synth.run(export, n_equipment=3, days=0.25, seed=5, start=START, sensor_faults=False, workspace=ws)
    settings = load_settings(ws.config_path, {})
    machines = sorted(p for p in export.iterdir() if p.is_dir())
    (root / "later").mkdir()
    for m in machines[1:]:
        shutil.move(m, root / "later" / m.name)
    ingest.run(ws, settings, export)
    DeltaTable(str(ws.table("features"))).create_checkpoint()
    for m in machines[1:]:  # one machine per run: at least two commits after the checkpoint
        shutil.move(root / "later" / m.name, m)
        ingest.run(ws, settings, export)
    return root


@pytest.fixture
def ws(base, tmp_path) -> Workspace:
    shutil.copytree(base, tmp_path / "copy")
    return Workspace(tmp_path / "copy" / "ws")


def _windows(ws) -> list[tuple]:
    """Every window of the features table, by its key (read through the log, as every command reads)."""
    import duckdb

    files = [str(f) for f in lake.partition_files(ws.table("features"))]
    with duckdb.connect() as con:
        return sorted(con.execute(f"SELECT equipment_id, recording_id, channel, window_index FROM {lake.READ_FILES}",
                                  [files]).fetchall())


def _log(ws) -> Path:
    return ws.table("features") / deltalog.LOG_DIR


def _commits(ws) -> list[Path]:
    return sorted(p for p in _log(ws).iterdir() if deltalog.COMMIT.match(p.name))


def _checkpoint(ws) -> Path:
    version = json.loads((_log(ws) / deltalog.LAST_CHECKPOINT).read_text())["version"]
    return _log(ws) / f"{version:020d}.checkpoint.parquet"


def _expire_commits_before_checkpoint(ws) -> None:
    """What delta-rs's log cleanup does after a checkpoint: the commits it covers are deleted."""
    version = json.loads((_log(ws) / deltalog.LAST_CHECKPOINT).read_text())["version"]
    for p in _commits(ws):
        if int(p.name[:20]) <= version:
            p.unlink()


def _damage(ws, kind: str) -> Path:
    commits = _commits(ws)
    after = [p for p in commits if int(p.name[:20]) > int(_checkpoint(ws).name[:20])]
    assert len(after) >= 2
    if kind.startswith(("commit", "newest")):
        victim = after[-1] if kind == "newest_commit_deleted" else after[0]  # a commit after the checkpoint
        if kind.endswith("deleted"):
            victim.unlink()
        elif kind == "commit_truncated":
            data = victim.read_bytes()
            victim.write_bytes(data[: len(data) // 2])
        else:
            victim.write_bytes(b"\x00garbage\xff" * 20)
        return victim
    if kind.startswith("checkpoint"):
        _expire_commits_before_checkpoint(ws)  # so the checkpoint alone held the first machine's files
        victim = _checkpoint(ws)
        if kind == "checkpoint_deleted":
            victim.unlink()
        else:
            victim.write_bytes(b"PAR1 not really a parquet file PAR1")
        return victim
    victim = _log(ws) / deltalog.LAST_CHECKPOINT
    victim.write_text('{"version": 1, "si')
    return victim


KINDS = ["commit_deleted", "newest_commit_deleted", "commit_truncated", "commit_corrupted", "checkpoint_deleted", "checkpoint_corrupted",
         "last_checkpoint_corrupted"]


@pytest.mark.parametrize("kind", KINDS)
def test_doctor_repair_brings_back_every_window_after_each_kind_of_log_damage(ws, kind):
    before = _windows(ws)
    assert len(before) > 100 and len(lake.partition_files(ws.table("features"))) > 10
    victim = _damage(ws, kind)
    shutil.move(ws.root.parent / "export", ws.root.parent / "export-moved-away")  # re-ingest cannot hide a loss
    lake.forget(ws.root)
    home = ["--home", str(ws.root)]
    settings = load_settings(ws.config_path, {})

    if kind not in ("last_checkpoint_corrupted", "newest_commit_deleted"):
        # (delta-rs reads past a bad _last_checkpoint; a log without its newest commit reads as an older one)
        proc = run_vibra("status", *home)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert HINT in proc.stderr and str(victim) in proc.stderr and "features" in proc.stderr, proc.stderr
    checks = {f["check"]: f for f in doctor.check(ws, settings)["findings"]}
    if kind == "newest_commit_deleted":  # no gap to see: the files the lost commit added are found by the ledger
        assert checks["uncommitted_completed_windows"]["count"] > 0
    else:
        assert str(victim) in checks["damaged_table_log"]["examples"][0]

    fixed = run_vibra("doctor", "--repair", "--json", *home)
    assert fixed.returncode == 0 and "Traceback" not in fixed.stderr, (fixed.stdout, fixed.stderr)
    lake.forget(ws.root)
    assert _windows(ws) == before  # the very same windows, none twice
    kept = list((ws.data / doctor.QUARANTINE / "features").glob(f"{deltalog.LOG_DIR}-*"))
    if kind != "newest_commit_deleted":
        assert len(kept) == 1 and (kept[0] / "why.json").exists()  # the damaged log is kept aside
    if kind.endswith(("truncated", "corrupted")):
        assert (kept[0] / victim.name).exists()
    assert doctor.check(ws, settings)["findings"] == []
    assert not catalog.query(ws.catalog_path, f"SELECT 1 FROM {catalog.CURRENT} c WHERE status <> 'completed'")


def _new_recording(export: Path) -> None:
    """A file the lake has not seen (a copy of one recording without its last line): ingest must write."""
    import gzip

    first = sorted(export.glob("*/*.csv.gz"))[0]
    lines = gzip.decompress(first.read_bytes()).splitlines(keepends=True)
    first.with_name("copy-" + first.name).write_bytes(gzip.compress(b"".join(lines[:-1])))


def test_every_command_over_a_damaged_log_says_one_line(ws):
    victim = _damage(ws, "commit_truncated")
    _new_recording(ws.root.parent / "export")
    home = ["--home", str(ws.root)]
    for command in (["status"], ["query", "recent", "motor-01"], ["maintain", "compact"], ["doctor"],
                    ["ingest", str(ws.root.parent / "export")], ["report"]):
        proc = run_vibra(*command, *home)
        if command[0] == "query":  # it reads hourly, whose log is whole: it answers
            assert proc.returncode == 0, proc.stderr
            continue
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, (command, proc.stderr)
        if command[0] != "doctor":
            lines = [x for x in proc.stderr.strip().splitlines() if " ERROR vibra" not in x]
            assert len(lines) == 1 and HINT in lines[0] and str(victim) in lines[0], (command, proc.stderr)
            assert "moving that file" not in proc.stderr  # a damaged lake blames no file
        else:
            assert "damaged_table_log" in proc.stdout and str(victim) in proc.stdout


def test_a_file_from_the_lost_commit_that_does_not_read_is_quarantined_not_adopted(ws):
    victim = _damage(ws, "commit_deleted")
    lost = sorted(set(lake.on_disk(ws.table("features"))) - {ws.table("features") / p for p in
                                                                 deltalog.read(ws.table("features")).files})
    assert lost, victim
    lost[0].write_bytes(lost[0].read_bytes()[:100])  # truncated too
    me = lake.writer_id(ws.table("features"))
    plan = repair.plan(ws.table("features"), me)
    assert lost[0] in plan.quarantine and lost[0] not in {p for p, _ in plan.adopt} and not plan.uncertain
    settings = load_settings(ws.config_path, {})
    assert doctor.check(ws, settings, repair=True)["findings"][0]["repaired"]
    assert (ws.data / doctor.QUARANTINE / lost[0].relative_to(ws.lake)).exists()  # kept, not deleted
    # its recording is pending again (its source still exists here): nothing is lost
    prefix = lost[0].name.removeprefix("part-").removesuffix(".parquet")
    rows = catalog.query(ws.catalog_path, f"SELECT status FROM {catalog.CURRENT} c WHERE recording_id LIKE ?",
                         [prefix + "%"])
    assert rows == [("pending",)]


def test_an_uncertain_rebuild_changes_nothing_and_names_the_flag(ws):
    """A derived table (not judged by the ledger, not recomputed) whose lost commit may have replaced one file of a
    partition by another: repair would guess, so it leaves the table as it is and says how to do it anyway."""
    files = lake.partition_files(ws.table("features"))[:3]
    derived = ws.lake / "derived"
    folder = lake.partition_dir(derived, "2026-03-01", "motor-01")
    folder.mkdir(parents=True)
    placed = []
    for n, f in enumerate(files):
        placed.append(folder / f"part-{n}.parquet")
        shutil.copy(f, placed[-1])
        lake.commit(derived, add=[placed[-1]])  # commits 0, 1, 2
    (derived / deltalog.LOG_DIR / f"{1:020d}.json").unlink()  # the one that added part-1
    lake.forget(ws.root)
    settings = load_settings(ws.config_path, {})
    log_before = sorted(p.name for p in (derived / deltalog.LOG_DIR).iterdir())
    report = doctor.check(ws, settings, repair=True)
    f = next(f for f in report["findings"] if f["check"] == "damaged_table_log")
    assert not f["repaired"] and "--rebuild-log" in f["repair"] and not report["ok"]
    assert sorted(p.name for p in (derived / deltalog.LOG_DIR).iterdir()) == log_before  # nothing changed
    forced = doctor.check(ws, settings, repair=True, rebuild_log=True)
    assert next(f for f in forced["findings"] if f["check"] == "damaged_table_log")["repaired"]
    assert set(lake.partition_files(derived)) == set(placed)  # all kept: nothing deleted


def test_migrate_over_a_garbage_parquet_names_it_in_one_line(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    bad = lake.partition_dir(ws.table("features"), "2026-03-01", "motor-01") / "part-0123456789abcdef.parquet"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a parquet file at all")  # a lake written before Delta, with one garbage file
    proc = run_vibra("migrate", "--home", str(ws.root))
    lines = [x for x in proc.stderr.strip().splitlines() if " ERROR vibra" not in x]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and str(bad) in lines[0] and HINT in lines[0], proc.stderr
