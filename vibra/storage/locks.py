"""Advisory file locks between processes (``fcntl.flock``): the workspace's run locks (``data/.ingest.lock``,
the catalog's). Lake tables take no lock: their Delta logs order commits (:mod:`vibra.storage.lake`).

A lock is released by the kernel when its holder dies, so a crashed run never
leaves the workspace locked.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from vibra.errors import BusyError


@contextmanager
def exclusive(path: Path, *, timeout_s: float, what: str,
              on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the body; wait up to ``timeout_s`` for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                if time.monotonic() >= deadline:
                    raise BusyError(f"{path}: another {what} (pid {holder}) is still running after "
                                    f"{timeout_s:g} s; wait for it or raise lock_timeout_s") from None
                if on_wait and not told:
                    on_wait(f"another {what} (pid {holder}) is running; waiting for it to finish")
                    told = True
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
