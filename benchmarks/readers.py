"""Readers benchmark: peak RSS while reading a large TDMS file, to show the readers stream.

Writes a TDMS file of the given size with npTDMS's own writer (2 float64 channels, 1 MiB
segments, as a DAQ logging continuously does), then reads it through ``vibra.readers`` in a
fresh process per size and reports that process's peak RSS (``ru_maxrss``) next to its RSS
after the imports. Flat peak RSS across sizes = streaming. The section is written into
BENCHMARKS.md (replacing an earlier one), after ``benchmarks/run.py`` has written the rest.

Run with ``just bench`` or ``.venv/bin/python benchmarks/readers.py [--gb 2] [--out BENCHMARKS.md]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Readers: streaming a large TDMS file"
SEGMENT_ROWS = 65_536  # 2 channels × 65536 float64 = 1 MiB per segment
RATE_HZ = 51_200.0

READ = """
import json, resource, sys, time
from pathlib import Path
import numpy as np
from vibra.readers import open_recording
from vibra.equipment import Equipment
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
rec = open_recording(Path(sys.argv[1]), Equipment("bench"), 262_144)
rows, total = 0, 0.0
for chunk in rec.chunks:
    rows += chunk.shape[0]
    total += float(chunk[:, 0].sum())
print(json.dumps({"rows": rows, "seconds": time.perf_counter() - t0, "base_mb": base,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rate_hz": rec.sample_rate_hz, "channels": rec.channels, "checksum": total}))
"""


def write_tdms(path: Path, size_bytes: int) -> int:
    """A TDMS file of about ``size_bytes``, segment by segment; returns its rows."""
    import numpy as np
    from nptdms import ChannelObject, TdmsWriter

    segments = max(1, size_bytes // (SEGMENT_ROWS * 16))
    t = np.arange(SEGMENT_ROWS) / RATE_HZ
    props = {"wf_increment": 1.0 / RATE_HZ, "unit_string": "g"}
    with TdmsWriter(str(path)) as writer:
        for i in range(segments):
            x = np.sin(2 * np.pi * 97.0 * (t + i * SEGMENT_ROWS / RATE_HZ))
            writer.write_segment([ChannelObject("accel", "x", x, properties=props),
                                  ChannelObject("accel", "y", -x, properties=props)])
    return segments * SEGMENT_ROWS


def read_in_child(path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", READ, str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def run(sizes_gb: list[float], workdir: Path) -> list[dict]:
    rows = []
    for gb in sizes_gb:
        path = workdir / f"bench_{gb:g}gb.tdms"
        t0 = time.perf_counter()
        n = write_tdms(path, int(gb * 2 ** 30))
        write_s = time.perf_counter() - t0
        result = read_in_child(path)
        assert result["rows"] == n, (result["rows"], n)
        result.update(size_gb=path.stat().st_size / 2 ** 30, write_s=write_s)
        rows.append(result)
        path.unlink()
        print(f"{result['size_gb']:.2f} GiB: read {result['seconds']:.1f} s, RSS before reading "
              f"{result['base_mb']:.0f} MB, peak {result['peak_mb']:.0f} MB", file=sys.stderr)
    return rows


def section(rows: list[dict]) -> str:
    lines = [SECTION, "",
             "A TDMS file written by npTDMS's own writer (2 float64 channels at 51.2 kHz, 1 MiB segments) is read "
             "through `vibra.readers.open_recording` (262,144 rows per chunk, every chunk touched) in a fresh process; "
             "peak RSS is that process's `ru_maxrss`. Flat peak RSS across file sizes = the reader streams "
             "(`benchmarks/readers.py`).", "",
             "| file size | rows | read time | RSS before reading | peak RSS |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['size_gb']:.2f} GiB | {r['rows']:,} | {r['seconds']:.1f} s | {r['base_mb']:.0f} MB | "
                     f"{r['peak_mb']:.0f} MB |")
    return "\n".join(lines) + "\n"


def write_section(out: Path, text: str) -> None:
    old = out.read_text() if out.exists() else "# Benchmarks\n"
    if SECTION in old:
        head, rest = old.split(SECTION, 1)
        nxt = rest.find("\n## ")
        old = head + (rest[nxt + 1:] if nxt >= 0 else "")
    out.write_text(old.rstrip("\n") + "\n\n" + text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0, help="size of the largest file (GiB)")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    sizes = [args.gb / 8, args.gb]
    workdir = Path(tempfile.mkdtemp(prefix="vibra-bench-readers-"))
    try:
        if shutil.disk_usage(workdir).free < 1.5 * args.gb * 2 ** 30:
            sys.exit(f"not enough free disk in {workdir} for a {args.gb:g} GiB file; use --gb")
        rows = run(sizes, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    write_section(args.out, section(rows))
    print(f"wrote the readers section of {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
