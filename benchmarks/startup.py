"""`vibra --help` start-up time."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


from common import VIBRA


def bench_help() -> list[dict]:
    def run(cmd):
        times = []
        for _ in range(7):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    t_help = run([VIBRA, "--help"])
    t_python = run([sys.executable, "-c", "pass"])
    return [{"benchmark": "`vibra --help` start-up (median of 7)", "detail": "baseline: bare `python -c pass`",
             "vibra_s": t_help, "baseline_s": t_python, "ratio": t_help / t_python, "target": "< 0.5 s"}]
