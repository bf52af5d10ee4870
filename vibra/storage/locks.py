"""Advisory file locks between processes (``fcntl.flock``).

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


@contextmanager
def _held(path: Path, mode: int) -> Iterator[None]:
    """Hold ``flock(mode)`` on ``path`` for the body, waiting for it as long as it takes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, mode)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def shared(path: Path):
    """Hold a shared lock on ``path`` for the body (many holders at once; waits while someone holds it
    exclusively). Lake writers hold their table's lock shared; compaction takes it exclusively only for
    the instant it swaps a partition, so a file being written is never swapped away."""
    return _held(path, fcntl.LOCK_SH)


def table_exclusive(path: Path):
    """Hold ``path`` exclusively (blocking): no lake writer of the table is mid-write."""
    return _held(path, fcntl.LOCK_EX)
