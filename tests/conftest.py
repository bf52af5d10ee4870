from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
if not REAL.exists():  # CI and developers keep shared/ beside the checkout; allow an override
    REAL = Path(os.environ.get("VIBRA_REAL_DATA", REAL))


# The CWRU drive-end set as one machine: 12 kHz, 6205 geometry, rpm from each file, the normal file at 48 kHz.
CWRU_PHYSICS_TOML = """
[equipment.cwru-de]
sample_rate_hz = 12000
units = "g"
bearing = { n_elements = 9, ball_diameter_mm = 7.94, pitch_diameter_mm = 39.04, contact_angle_deg = 0 }
iso_group = 2
iso_support = "rigid"

[[equipment.cwru-de.files]]
glob = "Normal_*"
sample_rate_hz = 48000
"""
# The same with 1024-sample hops and the normal file decimated to 12 kHz (anomaly and cluster tests).
CWRU_TOML = "[features]\nhop_length = 1024\n" + CWRU_PHYSICS_TOML + "decimate = 4\n"
# FEMTO PRONOSTIA Bearing1_1: headerless 2,560-sample snapshots every 10 s, times from the file names.
FEMTO_TOML = """
[features]
frame_length = 2560
hop_length = 2560

[equipment.bearing1_1]
sample_rate_hz = 25600
units = "g"
rpm = 1800
channels = ["-", "-", "-", "-", "horizontal", "vertical"]
bearing = { n_elements = 13, ball_diameter_mm = 3.5, pitch_diameter_mm = 25.6, contact_angle_deg = 0 }
start_rule = { regex = "acc_(\\\\d+)", origin = 2010-12-01T09:00:00Z, step_s = 10 }
"""


def stage(paths, machine_dir: Path, *, hour_apart: bool = False) -> Path:
    """Copy real-data files into an export's machine folder; returns the export folder.

    ``hour_apart``: the files carry no time, so give them modification times one hour apart in the
    order given (ingest then dates them by mtime, in that order).
    """
    import shutil

    machine_dir.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(paths):
        shutil.copy(path, machine_dir / Path(path).name)
        if hour_apart:
            os.utime(machine_dir / Path(path).name, (1_767_225_600 + 3600 * i,) * 2)
    return machine_dir.parent


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_prefect_server(port: int, env: dict, timeout_s: float = 180) -> subprocess.Popen:
    """``prefect server start`` on 127.0.0.1:``port`` in its own session (stop it with ``os.killpg``), returned
    once its health endpoint answers."""
    import time
    import urllib.request

    exe = str(Path(sys.executable).with_name("prefect"))
    server = subprocess.Popen([exe, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                if r.status == 200:
                    return server
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            if server.poll() is None:
                os.killpg(server.pid, 9)
            raise AssertionError("prefect server did not start")
        time.sleep(1)


def vibra_exe() -> str:
    exe = Path(sys.executable).with_name("vibra")
    return str(exe) if exe.exists() else "vibra"


def run_vibra(*args: str, cwd: Path | None = None, env: dict | None = None, check: bool = False,
              timeout: float = 600) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("VIBRA_")}
    full_env.update(env or {})
    proc = subprocess.run([vibra_exe(), *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"vibra {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def real_data() -> Path:
    if not REAL.exists():
        if os.environ.get("CI"):
            pytest.fail(f"real data not found at {REAL}; CI must have ../shared/data/real")
        pytest.skip(f"real data not found at {REAL}")
    return REAL
