"""Settings that take effect (issue 28): a machine's settings changed after its files were ingested
make `vibra ingest` recompute them (or, with `[ingest] on_settings_change = "warn"`, list them and the
command), and `vibra status` says how many files are stale and why. Through the CLI, as the tutorial."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from conftest import run_vibra

RATE = 10_000


def _export(root: Path) -> Path:
    """The tutorial's export: pump-01 with a time column, 3 one-second recordings an hour apart."""
    random.seed(1)
    folder = root / "export" / "pump-01"
    folder.mkdir(parents=True)
    for hour in range(3):
        lines = ["time,x,y"]
        for i in range(RATE):
            t = i / RATE
            x = 0.3 * math.sin(2 * math.pi * 25 * t) + 0.05 * random.gauss(0, 1)
            y = 0.2 * math.sin(2 * math.pi * 50 * t) + 0.05 * random.gauss(0, 1)
            lines.append(f"{t:.4f},{x:.5f},{y:.5f}")
        (folder / f"2026-01-05T{10 + hour:02d}-00-00.csv").write_text("\n".join(lines) + "\n")
    return root / "export"


def _velocity(home: Path) -> int:
    """Windows with a finite velocity (none without units)."""
    proc = run_vibra("sql", "SELECT count(*) FILTER (WHERE isfinite(velocity_rms_mm_s) AND velocity_rms_mm_s > 0) "
                     "AS n FROM features", "--json", "--home", str(home), check=True)
    return json.loads(proc.stdout)["rows"][0]["n"]


@pytest.fixture
def plant(tmp_path):
    run_vibra("init", str(tmp_path / "plant"), check=True)
    home = tmp_path / "plant"
    export = _export(tmp_path)
    run_vibra("ingest", str(export), "--home", str(home), check=True)
    assert _velocity(home) == 0  # no units: no velocity
    return home, export


def _add_units(home: Path, extra: str = "") -> None:
    toml = home / "vibra.toml"
    text = toml.read_text()
    if extra:
        text = text.replace("[ingest]\n", f"[ingest]\n{extra}\n", 1)
    toml.write_text(text + '\n[equipment.pump-01]\nunits = "g"\n')


def test_units_added_after_ingest_are_applied_by_the_next_ingest(plant):
    home, export = plant
    _add_units(home)
    st = json.loads(run_vibra("status", "--json", "--home", str(home), check=True).stdout)
    assert st["stale_files"] == 3
    assert st["stale"] == [{"equipment_id": "pump-01", "files": 3, "why": ["units: none → 'g'"]}]
    text = run_vibra("status", "--home", str(home), check=True).stdout
    assert "3 file(s) computed with other settings" in text and "units: none → 'g'" in text
    assert "vibra features rebuild --equipment pump-01" in text

    proc = run_vibra("ingest", str(export), "--json", "--home", str(home), check=True)
    out = json.loads(proc.stdout)
    assert out["new"] == 0 and out["skipped"] == 3 and out["recomputed"] == 3
    assert any("3 file(s) recomputed (units: none → 'g')" in n for n in out["notes"])
    assert _velocity(home) == 12  # 3 files × 2 channels × 2 windows
    assert json.loads(run_vibra("status", "--json", "--home", str(home), check=True).stdout)["stale_files"] == 0
    again = json.loads(run_vibra("ingest", str(export), "--json", "--home", str(home), check=True).stdout)
    assert again["recomputed"] == 0 and again["notes"] == []  # nothing stale any more: nothing recomputed


def test_a_label_change_recomputes_nothing(plant):
    home, export = plant
    (home / "vibra.toml").write_text((home / "vibra.toml").read_text() + '\n[equipment.pump-01]\nlabel = "Pump 1"\n')
    assert json.loads(run_vibra("status", "--json", "--home", str(home), check=True).stdout)["stale_files"] == 0
    out = json.loads(run_vibra("ingest", str(export), "--json", "--home", str(home), check=True).stdout)
    assert out["recomputed"] == 0


def test_warn_lists_the_stale_files_and_the_command(plant):
    home, export = plant
    _add_units(home, 'on_settings_change = "warn"')
    proc = run_vibra("ingest", str(export), "--home", str(home), check=True)
    assert "3 ingested file(s) were computed with other settings (pump-01: units: none → 'g')" in proc.stdout
    assert "`vibra features rebuild --equipment pump-01`" in proc.stdout
    assert _velocity(home) == 0  # listed, not recomputed
    run_vibra("features", "rebuild", "--equipment", "pump-01", "--home", str(home), check=True)
    assert _velocity(home) == 12
    assert json.loads(run_vibra("status", "--json", "--home", str(home), check=True).stdout)["stale_files"] == 0
