"""Scriptable outputs (issue 28): `vibra runs` prints a table (times to the second, counts as key=value, no
Python dict), and a `train` that made no model is recorded `not_ready`, as it exits 3."""

from __future__ import annotations

import json
import re

from conftest import run_vibra


def test_train_without_data_is_not_ready_in_its_exit_code_and_its_run_record(tmp_path):
    home = tmp_path / "plant"
    run_vibra("init", str(home), check=True)
    proc = run_vibra("train", "--home", str(home))
    assert proc.returncode == 3, proc.stderr
    assert "no model trained" in proc.stdout
    (run,) = json.loads(run_vibra("runs", "--command", "train", "--json", "--home", str(home), check=True).stdout)["runs"]
    assert run["status"] == "not_ready" and run["counts"]["models"] == 0
    table = run_vibra("runs", "--home", str(home), check=True).stdout
    assert "not_ready" in table and "models=0" in table
    assert "{" not in table and "'" not in table  # no Python dict repr
    assert not re.search(r"\d\d:\d\d:\d\d\.\d", table)  # seconds, no fractions


def test_every_command_records_one_run_shape(tmp_path):
    """`vibra runs --json`: every record has the same keys whatever the command and however it ended, its counts
    a flat object of numbers and words (a script reads them without knowing the command)."""
    home = tmp_path / "plant"
    run_vibra("init", str(home), check=True)
    folder = tmp_path / "export" / "pump-01"
    folder.mkdir(parents=True)
    (folder / "2026-01-05T10-00-00.csv").write_text("time,x\n" + "".join(f"{i / 1000:.3f},{(-1) ** i * 0.1}\n"
                                                                          for i in range(2000)))
    (folder / "2026-01-05T11-00-00.csv").write_text("time,x\n0.000,n/a\n")  # refused: a failed file
    for command in (["ingest", str(tmp_path / "export")], ["train"], ["rul"], ["alarms"], ["readiness"], ["report"]):
        run_vibra(*command, "--home", str(home))
    runs = json.loads(run_vibra("runs", "--limit", "50", "--json", "--home", str(home), check=True).stdout)["runs"]
    assert {r["command"] for r in runs} >= {"ingest", "train", "rul", "alarms", "report"}, runs
    assert len({tuple(sorted(r)) for r in runs}) == 1, [sorted(r) for r in runs]
    assert {r["status"] for r in runs} >= {"partial", "not_ready", "ok"}, [(r["command"], r["status"]) for r in runs]
    for r in runs:
        assert isinstance(r["counts"], dict) and all(isinstance(v, (int, float, str, bool)) or v is None
                                                     for v in r["counts"].values()), (r["command"], r["counts"])
        assert isinstance(r["seconds"], (int, float)) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["started_at"])
