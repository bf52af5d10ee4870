"""A run killed outright (SIGKILL: no ``finally`` runs) is closed by the next run, not left "running" for ever."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

from vibra import __version__
from vibra.settings import load_settings
from vibra.storage import lake, ledger
from vibra.workspace import init_workspace
from vibra_pipelines import ingest, runs, status, synth

from conftest import run_vibra, vibra_exe

START = datetime(2026, 3, 1, tzinfo=timezone.utc)
HOUR = 3600.0


def _dead_pid() -> int:
    """The pid of a process that has ended and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_verdict_rule():
    now = datetime.now(timezone.utc)
    here, there = socket.gethostname(), "other-host"
    me = {"pid": os.getpid(), "host": here, "started_at": now}
    assert runs.stale_verdict(me, host=here, now=now, other_host_after_s=HOUR) is None  # alive: left alone
    dead = _dead_pid()
    assert runs.stale_verdict({"pid": dead, "host": here, "started_at": now}, host=here, now=now,
                              other_host_after_s=HOUR) == (
        "killed", f"process {dead} on {here} ended without closing its run")
    # this process's pid on a run that started before this process did: the pid was reused, the run's process is gone
    reused = {"pid": os.getpid(), "host": here, "started_at": now - timedelta(days=30)}
    assert runs.stale_verdict(reused, host=here, now=now, other_host_after_s=HOUR)[0] == "killed"
    # another host: its processes cannot be seen from here, so only its age counts
    old = {"pid": dead, "host": there, "started_at": now - timedelta(seconds=HOUR + 1)}
    status_, reason = runs.stale_verdict(old, host=here, now=now, other_host_after_s=HOUR)
    assert status_ == "abandoned" and f"process {dead} on {there}" in reason and "ingest.lock_timeout_s" in reason
    recent = {"pid": dead, "host": there, "started_at": now - timedelta(seconds=HOUR - 1)}
    assert runs.stale_verdict(recent, host=here, now=now, other_host_after_s=HOUR) is None
    # rows from before vibra kept a pid: the age rule too
    legacy = {"pid": None, "host": None, "started_at": now - timedelta(days=2)}
    assert runs.stale_verdict(legacy, host=here, now=now, other_host_after_s=HOUR)[0] == "abandoned"
    assert runs.stale_verdict({**legacy, "started_at": now}, host=here, now=now, other_host_after_s=HOUR) is None


def test_close_stale_on_a_real_catalog_touches_only_stale_running_rows(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    ledger.ensure(ws)
    now = datetime.now(timezone.utc)
    here = socket.gethostname()
    dead = _dead_pid()
    rows = {"alive": (os.getpid(), here, now, "running"), "dead": (dead, here, now, "running"),
            "far-old": (dead, "other-host", now - timedelta(hours=2), "running"),
            "far-new": (dead, "other-host", now - timedelta(minutes=5), "running"),
            "done": (dead, here, now, "ok")}
    for run_id, (pid, host, started, st_) in rows.items():
        ledger.record_run(ws, {"run_id": run_id, "command": "ingest", "started_at": started, "status": st_,
                               "vibra_version": __version__, "pid": pid, "host": host})
    closed = runs.close_stale(ws, HOUR)
    assert sorted((c[0], c[1]) for c in closed) == [("dead", "killed"), ("far-old", "abandoned")]
    by_id = {r["run_id"]: r for r in ledger.runs(ws, 10)}
    assert {k: r["status"] for k, r in by_id.items()} == {
        "alive": "running", "dead": "killed", "far-old": "abandoned", "far-new": "running", "done": "ok"}
    assert by_id["dead"]["error"] == f"process {dead} on {here} ended without closing its run"
    assert by_id["dead"]["finished_at"] is not None and by_id["alive"]["finished_at"] is None
    assert runs.close_stale(ws, HOUR) == []  # closed once


def _freeze_when(proc, partial, timeout_s: float = 300.0):
    """Poll until ``partial()`` is not None, SIGSTOP the process and read it again while frozen."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if partial() is not None:
            proc.send_signal(signal.SIGSTOP)
            state = partial()
            if state is not None:
                return state
            proc.send_signal(signal.SIGCONT)
        time.sleep(0.005)
    proc.kill()
    raise AssertionError(f"the ingest finished before it could be killed; the test would prove nothing\n"
                         f"{proc.communicate(timeout=60)}")


def test_a_killed_ingest_is_closed_as_killed_by_the_next_run(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    export = tmp_path / "export"
    synth.run(export, n_equipment=3, days=1, seed=21, start=START, sensor_faults=False, workspace=ws)
    settings = load_settings(ws.config_path, {})
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIBRA_")}
    proc = subprocess.Popen([vibra_exe(), "ingest", str(export), "--home", str(ws.root)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)

    def landed():  # some of the 72 recordings' feature files committed, not all: the kill lands mid-work
        n = len(lake.partition_files(ws.table("features")))
        return n if 1 <= n < 72 else None

    assert 1 <= _freeze_when(proc, landed) < 72
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    (row,) = [r for r in ledger.runs(ws, 10) if r["command"] == "ingest"]
    assert row["status"] == "running" and row["finished_at"] is None  # what SIGKILL leaves
    assert (row["pid"], row["host"]) == (proc.pid, socket.gethostname())

    run_vibra("maintain", "gc", "--home", str(ws.root), check=True)  # any command that records a run
    (row,) = [r for r in ledger.runs(ws, 10) if r["command"] == "ingest"]
    assert row["status"] == "killed" and row["finished_at"] is not None
    assert row["error"] == f"process {proc.pid} on {socket.gethostname()} ended without closing its run"
    shown = json.loads(run_vibra("runs", "--json", "--home", str(ws.root), check=True).stdout)["runs"]
    assert [(r["command"], r["status"]) for r in shown] == [("maintain gc", "ok"), ("ingest", "killed")]
    assert shown[1]["seconds"] is None  # when it died is unknown; finished_at is when it was found dead

    result = ingest.run(ws, settings, export)  # the next ingest completes
    assert result.failed == 0 and status.run(ws)["completed"] == 72
    assert [(r["command"], r["status"]) for r in ledger.runs(ws, 10)] == [
        ("ingest", "ok"), ("maintain gc", "ok"), ("ingest", "killed")]
