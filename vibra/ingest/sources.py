"""The export an ingest reads, ``<source>/<equipment_id>/**``, scanned without trusting it.

A hostile or half-broken export must not stop the scan. Symlink loops, dangling links, names
that are not UTF-8, FIFOs and symlinks whose target leaves the source folder each become a
refused file with a reason (recorded as failed; the link is never followed out of the export,
so nothing outside it is read). A file that vanishes between listing and stat, a symlinked
folder inside the export and a folder that cannot be listed become warnings: no file is left
to record there.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from vibra.errors import InputError
from vibra.settings import EQUIPMENT_ID_RE

# a refused file is retried on the next run when its kind is "retry" (it may be fixed without changing
# its size or mtime: a dangling link's target appears, a loop is broken); "input" waits for a change
INPUT, RETRY = "input", "retry"


@dataclass
class SourceFile:
    """A regular file to ingest, as stat saw it during the scan.

    ``previous_id`` is the recording id this path was last completed as (None for a new file);
    ``old_ids`` the ids of its earlier versions whose windows a new version replaces.
    """

    path: Path
    equipment_id: str
    size_bytes: int
    mtime: float
    previous_id: str | None = None
    old_ids: tuple[str, ...] = ()


@dataclass
class Refused:
    """A file the scan refuses, with the reason; ``path`` is printable (see :func:`display`)."""

    path: str
    equipment_id: str
    reason: str
    kind: str = INPUT
    size_bytes: int = 0
    mtime: float = 0.0


@dataclass
class Scan:
    files: list[SourceFile] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)      # files directly in the source folder
    refused: list[Refused] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def display(path: Path | str) -> str:
    """A path as storable, printable text: bytes that are not UTF-8 shown as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _decodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # os.fsdecode keeps undecodable bytes as lone surrogates
        return False
    return True


def scan(source: Path) -> Scan:
    """Every file under ``source/<equipment_id>/**`` (hidden files and folders skipped), sorted.

    ``source`` must be resolved (absolute, no symlinks): symlink targets are checked against it.
    """
    out = Scan()
    try:
        entries = sorted(os.scandir(source), key=lambda e: e.name)
    except OSError as exc:
        raise InputError(f"{display(source)}: cannot list the folder ({exc.strerror}); check its permissions") from None
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        if entry.is_symlink() and not _inside(path, source):
            out.refused.append(_refuse(path, entry.name, "symlink leaves the source folder; copy the files into "
                                                         "the export instead"))
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if not is_dir:
            if entry.is_symlink() and not path.exists():
                out.refused.append(_refuse(path, entry.name, "dangling or looping symlink", RETRY))
            else:
                out.ignored.append(path)
            continue
        _walk(source, path, entry.name, out)
    return out


def _walk(source: Path, top: Path, equipment_id: str, out: Scan) -> None:
    safe = EQUIPMENT_ID_RE.match(equipment_id) is not None and _decodable(equipment_id)

    def unreadable(exc: OSError) -> None:
        out.warnings.append(f"{display(exc.filename or top)}: cannot list this folder ({exc.strerror}); "
                            "its files were not scanned — check its permissions")

    for folder, dirs, names in os.walk(top, onerror=unreadable):
        kept = []
        for d in sorted(d for d in dirs if not d.startswith(".")):
            sub = Path(folder) / d
            if not sub.is_symlink():
                kept.append(d)
            elif not _inside(sub, source):
                out.refused.append(_refuse(sub, equipment_id, "symlink leaves the source folder; copy the files "
                                                              "into the export instead"))
            else:  # os.walk does not follow it; its files are read where they really are
                out.warnings.append(f"{display(sub)}: symlinked folder not followed (its target is inside the "
                                    "export and is scanned there)")
        dirs[:] = kept
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            item = _file(source, path, equipment_id, safe, out)
            if item is not None:
                out.files.append(item)


def _file(source: Path, path: Path, equipment_id: str, safe: bool, out: Scan) -> SourceFile | None:
    try:
        lst = os.lstat(path)
    except FileNotFoundError:
        out.warnings.append(f"{display(path)}: vanished during the scan; it is picked up on the next run if it returns")
        return None
    except OSError as exc:
        out.refused.append(_refuse(path, equipment_id, f"cannot stat ({exc.strerror})", RETRY))
        return None
    if not _decodable(str(path)):
        out.refused.append(_refuse(path, equipment_id, "file or folder name is not valid UTF-8; rename it", INPUT, lst))
        return None
    if not safe:  # recorded under no equipment: the folder name is not one
        out.refused.append(_refuse(path, "", f"equipment folder name {display(equipment_id)!r} is not a safe id "
                                                       "(letters, digits, '_', '.', '-'; at most 64); rename the folder",
                                   INPUT, lst))
        return None
    if stat.S_ISLNK(lst.st_mode):
        try:
            path.resolve(strict=True)
        except FileNotFoundError:
            out.refused.append(_refuse(path, equipment_id, "dangling symlink (its target is missing)", RETRY, lst))
            return None
        except (OSError, RuntimeError):  # ELOOP; Python 3.11 raises RuntimeError for a loop
            out.refused.append(_refuse(path, equipment_id, "symlink loop", RETRY, lst))
            return None
        if not _inside(path, source):
            out.refused.append(_refuse(path, equipment_id, "symlink leaves the source folder; copy the file into "
                                                           "the export instead", INPUT, lst))
            return None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        out.warnings.append(f"{display(path)}: vanished during the scan; it is picked up on the next run if it returns")
        return None
    except OSError as exc:
        out.refused.append(_refuse(path, equipment_id, f"cannot stat ({exc.strerror})", RETRY, lst))
        return None
    if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end
        out.refused.append(_refuse(path, equipment_id, "not a regular file (a pipe, socket or device)", INPUT, lst))
        return None
    return SourceFile(path, equipment_id, st.st_size, st.st_mtime)


def _inside(path: Path, source: Path) -> bool:
    """Whether ``path``'s final target (symlinks resolved) lies inside ``source``."""
    try:
        return Path(os.path.realpath(path)).is_relative_to(source)
    except (OSError, ValueError):
        return False


def _refuse(path: Path, equipment_id: str, why: str, kind: str = INPUT, st: os.stat_result | None = None) -> Refused:
    shown = display(path)
    return Refused(shown, display(equipment_id), f"{shown}: {why}", kind,
                   st.st_size if st else 0, st.st_mtime if st else 0.0)
