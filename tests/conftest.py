from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
if not REAL.exists():  # CI and developers keep shared/ beside the checkout; allow an override
    REAL = Path(os.environ.get("VIBRA_REAL_DATA", REAL))


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
