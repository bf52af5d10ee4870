"""Ingest on worker processes (`[ingest] workers`): the same ledger and features as one process, copies claimed
once across workers, and a worker killed mid-file stops the run cleanly, blaming no file, for a rerun to finish."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import psutil
import pytest

from vibra.settings import load_settings
from vibra.storage import catalog, lake
from vibra.workspace import Workspace, init_workspace

from vibra_pipelines import ingest, synth
from vibra_pipelines.ingest import local

from conftest import run_vibra, vibra_exe

START = datetime(2026, 11, 2, tzinfo=timezone.utc)


def _export(root: Path, *, machines: int = 2, days: float = 0.5, seconds: float = 1.0, faults: bool = True) -> Path:
    """A seeded synthetic export (its machines' settings in ``root/vibra.toml``, a workspace)."""
    ws, _ = init_workspace(root)
    synth.run(root / "export", n_equipment=machines, days=days, seed=5, start=START, workspace=ws, seconds=seconds,
              sensor_faults=faults)
    return root / "export"


def _workspace(root: Path, like: Path) -> Workspace:
    ws, _ = init_workspace(root)
    shutil.copy(like / "vibra.toml", ws.config_path)
    return ws


def _snapshot(ws: Workspace) -> tuple[dict, Counter, pl.DataFrame]:
    """The current ledger row of every file (which of two copies owns the content may differ between runs: both
    are "ingested"), the count of each status, and the features table's rows in a fixed order."""
    rows = catalog.query(ws.catalog_path, "SELECT source_path, status, recording_id, error_kind, row_number() OVER "
                         "(PARTITION BY source_path ORDER BY updated_at DESC) AS rn FROM recordings")
    current = {"/".join(Path(p).parts[-2:]): (s, r, k) for p, s, r, k, rn in rows if rn == 1}  # machine/file
    files = {p:
             ("ingested" if s in ("completed", "duplicate") else s, r, k) for p, (s, r, k) in current.items()}
    active = [p for *_, p in lake.active(ws.table("features"))]
    table = pl.concat([pl.read_parquet(f, hive_partitioning=False) for f in active] or [pl.DataFrame()],
                      how="diagonal_relaxed")
    table = table.sort("recording_id", "channel", "window_index") if table.height else table
    return files, Counter(s for s, _, _ in current.values()), table


def test_auto_workers_follow_the_cores_and_the_run_size(monkeypatch):
    monkeypatch.setattr(local, "cores", lambda: 4)
    assert local.auto_workers(0, 50) == 1  # too few files to pay a worker's start: this process
    assert local.auto_workers(0, 250) == 2
    assert local.auto_workers(0, 10_000) == 4  # never more than the cores
    assert local.auto_workers(3, 2) == 2  # never more than the files
    assert local.auto_workers(3, 500) == 3
    assert local.auto_workers(1, 10_000) == 1


def test_two_workers_store_what_one_process_stores(tmp_path):
    export = _export(tmp_path / "a")
    # copies within the run, in one machine's folder and across machines: claimed once across the workers
    one_machine, other = sorted(p for p in export.iterdir() if p.is_dir())
    first = sorted(one_machine.glob("*.csv"))[0]
    shutil.copy(first, one_machine / "copy-of-first.csv")
    shutil.copy(first, other / "copy-of-first.csv")
    ws_a = Workspace(tmp_path / "a")
    settings = load_settings(ws_a.config_path, {}, {"ingest.workers": 2})
    done = ingest.run(ws_a, settings, export)
    assert done.workers == 2
    ws_b = _workspace(tmp_path / "b", tmp_path / "a")
    one = ingest.run(ws_b, load_settings(ws_b.config_path, {}, {"ingest.workers": 1}), export)
    assert one.workers == 1
    assert (done.new, done.duplicates, done.failed, done.windows) == (one.new, one.duplicates, one.failed, one.windows)
    files_a, counts_a, table_a = _snapshot(ws_a)
    files_b, counts_b, table_b = _snapshot(ws_b)
    assert counts_a == counts_b and counts_a["duplicate"] == 2 and counts_a["failed"] >= 1  # synth's corrupt files
    assert files_a == files_b
    # which copy owns the content is whichever claims it first (as with threads): its windows carry that file's
    # times (a copy's come from its modification time), so the copied recording is compared by its row count
    copied = files_a[f"{other.name}/copy-of-first.csv"][1]
    assert table_a.filter(pl.col("recording_id") != copied).equals(table_b.filter(pl.col("recording_id") != copied))
    assert (table_a["recording_id"] == copied).sum() == (table_b["recording_id"] == copied).sum() > 0
    assert table_a.select("recording_id", "channel", "window_index").is_duplicated().sum() == 0  # no copy stored twice
    # a rerun skips everything, and a copy of content completed before the run is a duplicate in a worker
    shutil.copy(first, other / "later-copy.csv")
    again = ingest.run(ws_a, settings, export)
    assert (again.new, again.duplicates, again.skipped) == (0, 1, done.files_seen)


def _children_reading(pid: int, export: Path) -> dict[int, str]:
    """The processes under ``pid`` holding a file of ``export`` open, and that file."""
    found = {}
    for child in psutil.Process(pid).children(recursive=True):
        try:
            for f in child.open_files():
                if f.path.startswith(str(export)):
                    found[child.pid] = f.path
        except psutil.Error:
            continue
    return found


def test_a_worker_killed_mid_file_stops_the_run_and_a_rerun_completes(tmp_path):
    # 5 s recordings at 12.8 kHz: a worker holds each file open for the whole of its work (streamed in blocks)
    export = _export(tmp_path / "a", machines=2, days=0.25, seconds=5.0, faults=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIBRA_")}
    proc = subprocess.Popen([vibra_exe(), "ingest", str(export), "--workers", "2"], cwd=tmp_path / "a", env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed, deadline = None, time.monotonic() + 300
    while killed is None and proc.poll() is None and time.monotonic() < deadline:
        reading = _children_reading(proc.pid, export)
        if reading:
            pid, path = next(iter(reading.items()))
            os.kill(pid, signal.SIGKILL)
            killed = (pid, path)
        time.sleep(0.005)
    out, err = proc.communicate(timeout=300)
    assert killed is not None, f"no worker was seen reading a file (exit {proc.returncode}): {err}"
    assert proc.returncode == 1, err
    assert err.strip().splitlines()[-1] == f"error: {local.CRASHED}", err  # the one line (after the log's record)
    ws = Workspace(tmp_path / "a")
    _, counts, _ = _snapshot(ws)
    assert "failed" not in counts  # no file blamed
    assert counts["completed"] < 12  # the kill landed before the run's end: the killed worker's file is not done
    rerun = run_vibra("ingest", str(export), "--workers", "2", "--json", cwd=tmp_path / "a")
    assert rerun.returncode == 0, rerun.stderr
    clean = _workspace(tmp_path / "b", tmp_path / "a")
    ingest.run(clean, load_settings(clean.config_path, {}, {"ingest.workers": 1}), export)
    files_a, counts_a, table_a = _snapshot(ws)
    files_b, counts_b, table_b = _snapshot(clean)
    assert files_a == files_b and counts_a == counts_b == Counter(completed=12)
    assert table_a.equals(table_b)


@pytest.mark.parametrize("value", ["-1", "257"])
def test_workers_setting_is_validated(tmp_path, value):
    from vibra.errors import ConfigError

    ws, _ = init_workspace(tmp_path / "ws")
    with pytest.raises(ConfigError, match="ingest.workers"):
        load_settings(ws.config_path, {"VIBRA_INGEST_WORKERS": value})


UNGUARDED = """
import sys
from pathlib import Path
from vibra.settings import load_settings
from vibra.workspace import Workspace
from vibra_pipelines import ingest

ws = Workspace(Path(sys.argv[1]))  # no `if __name__ == "__main__":`: every spawned worker runs this again
ingest.run(ws, load_settings(ws.config_path, {}, {"ingest.workers": 2}), Path(sys.argv[2]))
print("done")
"""


def test_a_script_without_a_main_guard_fails_instead_of_hanging(tmp_path):
    export = _export(tmp_path / "a", machines=1, days=0.1, faults=False)
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "a"), str(export)], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode != 0 and "done" not in proc.stdout
    assert 'if __name__ == "__main__":' in proc.stderr, proc.stderr[-3000:]
