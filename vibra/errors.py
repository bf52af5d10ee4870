"""One exception family. Messages name the file or value and the fix.

Only the CLI turns these into exit codes: ``InputError``/``ConfigError`` and
failed work → 1, ``NotReadyError`` → 3. Anything else keeps its traceback.
"""

import re


class VibraError(Exception):
    """Base of every expected vibra failure."""

    exit_code = 1


class InputError(VibraError):
    """A file or value given by the user cannot be used."""


class ConfigError(VibraError):
    """A setting is missing, malformed or out of range."""


class WorkspaceError(VibraError):
    """No workspace could be found or created."""


class BusyError(VibraError):
    """Another process holds a resource this command needs."""


class StoreError(VibraError):
    """The object store holding the lake (``[lake] uri``) cannot be reached or refuses a request."""


class NotReadyError(VibraError):
    """The data is not ready for the requested step."""

    exit_code = 3


class CorruptError(VibraError):
    """A stored file is damaged (truncated, not what it claims to be, changed after it was written).

    ``path`` is the damaged file; the message names it and says to run ``vibra doctor --repair``,
    which reports and repairs what is safe (quarantine, repoint) — so no command ever reads a
    damaged file as if it were missing or empty.
    """

    def __init__(self, path, problem: str, fix: str = "run `vibra doctor --repair`"):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}; {fix}")


class CorruptArtifactError(CorruptError):
    """A manifest, ``latest.json`` pointer or artifact file that does not read or does not verify."""


class LakeCorruptError(CorruptError):
    """A lake file that cannot be read (truncated: no footer; gone; overwritten since its commit) or a table
    whose transaction log does not read (a commit or checkpoint missing or damaged). ``path`` is the data
    file or the log entry; the message names the table and ``vibra doctor --repair``."""


_RUST_IO = re.compile(r"os error (\d+)\)|\"errno\":\s*\"?(\d+)|\[Errno (\d+)\]")


def os_errno(exc: BaseException | None) -> int | None:
    """The errno behind a failure, found anywhere in its chain (``__cause__``/``__context__``): an OSError's,
    or the one delta-rs and Polars ("os error 28"), DuckDB ("errno":"28") or pyarrow ("[Errno 28]") put in the
    messages of their own exception types. None when no OS error is behind it."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno:
            return exc.errno
        text = str(exc)
        m = _RUST_IO.search(text)
        if m:
            return int(next(g for g in m.groups() if g))
        for code, words in _WORDS.items():  # DuckDB's IOException says only the words: "…": No space left on device
            if words in text:
                return code
        exc = exc.__cause__ or exc.__context__
    return None


def _words() -> dict[int, str]:
    import errno
    import os

    return {c: os.strerror(c) for c in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES)}


_WORDS = _words()
_PATH = re.compile(r"(/[^\s'\",:()]+)")


def failed_path(exc: BaseException | None) -> str | None:
    """The path a failed write names, anywhere in its chain: an OSError's ``filename``, or the first absolute
    path in a storage library's message ('Could not write file "/…/catalog.duckdb": No space left …')."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if getattr(exc, "filename", None):
            return str(exc.filename)
        m = _PATH.search(str(exc))
        if m:
            return m.group(1)
        exc = exc.__cause__ or exc.__context__
    return None


def disk_failure(exc: BaseException) -> str | None:
    """One line for a write the disk refused (full, over quota, read-only, permissions) anywhere in ``exc``'s
    chain, naming the path; None when that is not what happened."""
    import errno
    import os

    code = os_errno(exc)
    if code is None:
        return None
    where = failed_path(exc) or "the workspace"
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f"no space left writing {where} ({os.strerror(code)}); free space, then run the command again"
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"cannot write {where} ({os.strerror(code)}); check the workspace's permissions and mounts, then run "
                "the command again")
    return None
