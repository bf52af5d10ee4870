from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# The real data's location and the machine sections reading each set: one definition, shared with the
# benchmarks (benchmarks/real.py), which do not import the tests.
sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))  # last: its names shadow nothing
from real import CWRU_PHYSICS_TOML, CWRU_TOML, FEMTO_TOML, REAL, stage  # noqa: E402,F401 - the tests' names


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


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    """Under ``--dist loadgroup`` (pyproject's addopts), the tests of a file where some test uses a module-scoped
    fixture (a seeded plant, a moto S3 server, ...) form one group, run on one worker: the fixture is built
    once, as in a serial run. Every other test goes to whichever worker is free. An explicit
    ``@pytest.mark.xdist_group`` is kept."""
    shared = set()  # the files with a test on a module-scoped fixture: all their tests go together, in order —
    for item in items:  # a test of another file run between two of them would tear the fixture down (built twice)
        info = getattr(item, "_fixtureinfo", None)
        defs = info.name2fixturedefs.values() if info is not None else ()
        if any(d and d[-1].scope in ("module", "package", "class") for d in defs):
            shared.add(str(item.path))
    for item in items:
        if not item.get_closest_marker("xdist_group") and str(item.path) in shared:
            item.add_marker(pytest.mark.xdist_group(Path(str(item.path)).stem))
