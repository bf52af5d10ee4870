"""Content hashes of files (the recording ids, the model files' integrity)."""

from __future__ import annotations

import hashlib
from pathlib import Path

BLOCK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read 1 MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


class ReadHash:
    """The sha256 of a file taken in its reader's own pass over the bytes (no second read).

    A reader opens the file through :meth:`open` and reads it front to back (``read`` and
    ``readline`` only: no seeking); once done it calls :meth:`finish`, which hashes whatever
    the reader left unread. :attr:`hexdigest` is the file's :func:`sha256_file` then, and None
    before (a reader that stopped early, e.g. on a parse error, gives no id).
    """

    def __init__(self, path: Path):
        self.path = path
        self._digest = hashlib.sha256()
        self._fh = None
        self.hexdigest: str | None = None

    def open(self) -> "ReadHash":
        self._fh = open(self.path, "rb")
        return self

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self._digest.update(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        data = self._fh.readline(size)
        self._digest.update(data)
        return data

    def readable(self) -> bool:
        return True

    def finish(self) -> str:
        """Hash the bytes not read yet and return the file's hex sha256."""
        while self.read(BLOCK):
            pass
        self.hexdigest = self._digest.hexdigest()
        return self.hexdigest

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()

    def __enter__(self) -> "ReadHash":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
