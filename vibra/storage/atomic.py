"""Files written whole or not at all: a hidden temporary name beside the final one, then an atomic rename.

The lowest layer of storage (the lake, raw waveforms, hourly rebuilds and the object-storage cache all write
this way), so it imports nothing of vibra: a module that writes a file atomically never needs the lake.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

TMP_MARK = ".tmp-"  # in the name of every temporary file (doctor and staging clean up what a killed writer left)


def temp_path(final: Path) -> Path:
    """A hidden temporary name in ``final``'s folder (same filesystem, so the rename is atomic)."""
    return final.with_name(f".{final.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def replace_into(tmp: Path, final: Path) -> None:
    """Atomically move a fully written temporary file to its final name (its bytes synced first)."""
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
