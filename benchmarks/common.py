"""Shared by the benchmark modules: the checkout, the vibra command, timing, the machine line, and an ingest of a
synthetic export in this process (the benchmark machine with its physics on)."""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import numpy as np



ROOT = Path(__file__).resolve().parents[1]


VIBRA = str(Path(sys.executable).with_name("vibra"))


def write_between(out: Path, start_mark: str, end_mark: str, lines: list[str]) -> None:
    """Put ``lines`` between the two marks in ``out`` (replacing what was there), or append them with the marks."""
    text = out.read_text() if out.exists() else ""
    body = "\n".join([start_mark, "", *lines, end_mark])
    if start_mark in text:
        head, rest = text.split(start_mark, 1)
        text = head + body + rest.split(end_mark, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + body + "\n"
    out.write_text(text)


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def machine() -> str:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import duckdb
    import numba
    import polars

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{cpu}; {os.cpu_count()} cores; {mem:.0f} GiB; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}; numpy {np.__version__}, numba {numba.__version__}, "
            f"polars {polars.__version__}, duckdb {duckdb.__version__}")


def write_big_csvs(folder: Path, n_files: int, rows: int, channels: int = 3) -> int:
    import polars as pl

    rng = np.random.default_rng(1)
    eq = folder / "dau-01"
    eq.mkdir(parents=True)
    for i in range(n_files):
        data = {f"acc{c}": rng.standard_normal(rows) * 0.5 for c in range(channels)}
        pl.DataFrame(data).write_csv(eq / f"dau-01_2026-01-01T{i:02d}-00-00.csv", float_precision=6)
    return sum(p.stat().st_size for p in eq.iterdir())


# The benchmark machine: physics indicators on (units, rpm, bearing geometry, ISO class).
DAU_TOML = """
[equipment.dau-01]
sample_rate_hz = 51200
units = "g"
rpm = 1780
bearing = { n_elements = 9, ball_diameter_mm = 7.94, pitch_diameter_mm = 39.04, contact_angle_deg = 0 }
iso_group = 2
iso_support = "rigid"
"""


def ingest_in_process(source: Path, workdir: Path, name: str, env: dict | None = None) -> tuple[float, object]:
    from vibra.settings import load_settings
    from vibra.workspace import init_workspace
    from vibra_pipelines import ingest

    ws, _ = init_workspace(workdir / name)
    text = ws.config_path.read_text() + DAU_TOML
    ws.config_path.write_text(text)
    synth_eq = source / "equipment.toml"
    if synth_eq.exists():
        ws.config_path.write_text(text + "\n" + synth_eq.read_text())
    settings = load_settings(ws.config_path, env or {})
    t = time.perf_counter()
    result = ingest.run(ws, settings, source)
    return time.perf_counter() - t, result
