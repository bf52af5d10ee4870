"""The synth stage: write a seeded synthetic plant export with its ground truth."""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

import numpy as np

from vibra.errors import InputError
from vibra.settings import equipment_toml, read_toml
from vibra.storage.lake import write_bytes as _write
from vibra.synth import SENSOR_FAULTS, apply_sensor_fault, make_plan, past_lives, severity, signal
from vibra.workspace import Workspace

from vibra_pipelines.runs import StageResult


@dataclass
class SynthResult(StageResult):
    out: str
    equipment: list[str]
    files: int
    bytes_written: int
    truth_path: str
    equipment_toml: str
    workspace_sections_added: list[str] = field(default_factory=list)
    events_path: str = ""  # maintenance log of the past lives' failures and replacements (with past_lives)


def _csv_bytes(x: np.ndarray) -> bytes:
    import polars as pl

    df = pl.DataFrame({"x": x[:, 0], "y": x[:, 1]})
    return df.write_csv(float_precision=5, null_value="").encode()


def run(out: Path, *, n_equipment: int = 4, days: float = 2.0, seed: int = 0, start: datetime,
        sample_rate_hz: float = 12_800.0, recordings_per_hour: int = 1, seconds: float = 1.0,
        gzip_share: float = 0.25, sensor_faults: bool = True, workspace: Workspace | None = None,
        progress: Callable[[int, int], None] | None = None, n_past_lives: int = 0) -> SynthResult:
    """Write ``out/<equipment_id>/<equipment_id>_<timestamp>.csv[.gz]``, ``out/truth.csv``
    and ``out/equipment.toml``; append missing ``[equipment.<id>]`` sections to the
    workspace's ``vibra.toml`` when a workspace is given.

    ``n_past_lives``: earlier lives of every faulty machine, run to failure and replaced before the
    period, at the same recording rate (no sensor faults), plus ``out/maintenance_events.csv``
    (``equipment_id,at,kind,note``) with their failures and replacements.
    """
    if n_equipment < 1 or days <= 0 or recordings_per_hour < 1 or seconds <= 0:
        raise InputError(f"synth: equipment={n_equipment}, days={days}, recordings_per_hour={recordings_per_hour}, "
                         f"seconds={seconds}; all must be positive")
    plan = make_plan(n_equipment, days, seed, start, sample_rate_hz=sample_rate_hz,
                     recordings_per_hour=recordings_per_hour, seconds=seconds)
    rng = np.random.default_rng(seed + 1)
    times = plan.times()
    jobs = [(m, t) for m in plan.machines for t in times]
    lives = past_lives(plan, n_past_lives, seed) if n_past_lives > 0 else []
    step = timedelta(hours=1 / plan.recordings_per_hour)
    history = [(life, life.start + i * step) for life in lives
               for i in range(int((life.failure - life.start) / step) + 1)]
    faults: dict[int, str] = {}
    if sensor_faults and len(jobs) >= 20:
        picks = rng.choice(len(jobs), size=len(SENSOR_FAULTS), replace=False)
        faults = {int(i): f for i, f in zip(picks, SENSOR_FAULTS)}
    out.mkdir(parents=True, exist_ok=True)
    truth = ["equipment_id,file,fault_type,severity,onset,sensor_fault"]
    tick = (lambda done: progress(done, len(jobs) + len(history))) if progress else (lambda done: None)
    written = _write_present(out, plan, jobs, faults, gzip_share, rng, truth, tick)
    written += _write_past(out, plan, history, gzip_share, rng, truth, lambda k: tick(len(jobs) + k))
    events_path = _write_events(out, lives)
    _write(out / "truth.csv", ("\n".join(truth) + "\n").encode())
    sections = "".join(equipment_toml(m.equipment) + "\n" for m in plan.machines)
    _write(out / "equipment.toml", sections.encode())
    added = add_equipment_sections(workspace, [m.equipment for m in plan.machines]) if workspace else []
    return SynthResult(out=str(out), equipment=[m.equipment.equipment_id for m in plan.machines],
                       files=len(jobs) + len(history), bytes_written=written, truth_path=str(out / "truth.csv"),
                       equipment_toml=str(out / "equipment.toml"), workspace_sections_added=added,
                       events_path=events_path)


def _file_name(eid: str, when: datetime, compressed: bool) -> str:
    return f"{eid}_{when:%Y-%m-%dT%H-%M-%S}.csv" + (".gz" if compressed else "")


def _write_present(out: Path, plan, jobs: list, faults: dict[int, str], gzip_share: float, rng, truth: list[str],
                   tick: Callable[[int], None]) -> int:
    """The period's recordings (with their sensor faults); their truth rows appended; bytes written."""
    written = 0
    for j, (machine, when) in enumerate(jobs):
        eid = machine.equipment.equipment_id
        elapsed = (when - plan.start).total_seconds()
        x = signal(machine, elapsed, plan, rng)
        sensor = faults.get(j, "")
        if sensor and sensor != "truncated":
            x = apply_sensor_fault(x, sensor, rng)
        compressed = sensor == "truncated" or rng.random() < gzip_share
        name = _file_name(eid, when, compressed)
        payload = _csv_bytes(x)
        if compressed:
            payload = gzip.compress(payload, compresslevel=1, mtime=0)
        if sensor == "truncated":
            payload = payload[: len(payload) // 2]
        path = out / eid / name
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(path, payload)
        written += len(payload)
        onset_iso = "" if machine.onset_s == float("inf") else \
            datetime.fromtimestamp(plan.start.timestamp() + machine.onset_s, tz=plan.start.tzinfo).isoformat()
        truth.append(f"{eid},{eid}/{name},{machine.fault},{severity(machine, elapsed):.4f},{onset_iso},{sensor}")
        tick(j + 1)
    return written


def _write_past(out: Path, plan, history: list, gzip_share: float, rng, truth: list[str],
                tick: Callable[[int], None]) -> int:
    """The recordings of earlier lives, run to failure; their truth rows appended; bytes written."""
    written = 0
    for k, (life, when) in enumerate(history):
        m, eid = life.machine, life.machine.equipment.equipment_id
        elapsed = (when - life.start).total_seconds()
        payload = _csv_bytes(signal(m, elapsed, plan, rng))
        compressed = rng.random() < gzip_share
        name = _file_name(eid, when, compressed)
        _write(out / eid / name, gzip.compress(payload, compresslevel=1, mtime=0) if compressed else payload)
        written += len(payload)
        onset = datetime.fromtimestamp(life.start.timestamp() + m.onset_s, tz=life.start.tzinfo).isoformat()
        truth.append(f"{eid},{eid}/{name},{m.fault},{severity(m, elapsed):.4f},{onset},")
        tick(k + 1)
    return written


def _write_events(out: Path, lives: list) -> str:
    """``maintenance_events.csv``: the failure and replacement of every earlier life ("" when none)."""
    if not lives:
        return ""
    rows = ["equipment_id,at,kind,note"]
    for life in sorted(lives, key=lambda x: (x.machine.equipment.equipment_id, x.failure)):
        eid = life.machine.equipment.equipment_id
        rows.append(f"{eid},{life.failure.isoformat()},failure,{life.machine.fault} (synth truth)")
        rows.append(f"{eid},{life.replaced.isoformat()},replacement,new bearing (synth)")
    _write(out / "maintenance_events.csv", ("\n".join(rows) + "\n").encode())
    return str(out / "maintenance_events.csv")


def add_equipment_sections(ws: Workspace, equipment: list) -> list[str]:
    """Append ``[equipment.<id>]`` sections that ``vibra.toml`` lacks; never touch existing ones."""
    existing = read_toml(ws.config_path).get("equipment", {})
    missing = [e for e in equipment if e.equipment_id not in existing]
    if missing:
        text = ws.config_path.read_text() if ws.config_path.exists() else ""
        text = text.rstrip("\n") + "\n\n" + "\n".join(equipment_toml(e) for e in missing)
        _write(ws.config_path, text.encode())
    return [e.equipment_id for e in missing]
