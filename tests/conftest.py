from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
if not REAL.exists():  # CI and developers keep shared/ beside the checkout; allow an override
    REAL = Path(os.environ.get("VIBRA_REAL_DATA", REAL))


# The CWRU drive-end set as one machine: 12 kHz, the 48 kHz normal file decimated to match, rpm per file.
CWRU_TOML = """
[features]
hop_length = 1024

[equipment.cwru-de]
sample_rate_hz = 12000
units = "g"
bearing = { n_elements = 9, ball_diameter_mm = 7.94, pitch_diameter_mm = 39.04, contact_angle_deg = 0 }

[[equipment.cwru-de.files]]
glob = "Normal_*"
sample_rate_hz = 48000
decimate = 4
"""


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
