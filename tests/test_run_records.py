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
