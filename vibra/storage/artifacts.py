"""Versioned artifacts: one store type, one pointer format, one registry of kinds.

A store is a folder of version folders and one pointer::

    <store>/<version>/<files…>          written under a hidden temporary name, renamed into place
    <store>/<version>/manifest.json     what the version is, plus ``files``: {name: sha256}
    <store>/latest.json                 {"version": "<version>", "schema": 1}, replaced atomically

Version ids start with the UTC time they were made (``20260102T030405123456Z-<tag>``), so names
sort by age. A version *verifies* when its manifest reads as JSON and every file it lists has the
sha256 written there. A reader never takes a damaged pointer or manifest for "nothing there":
it gets a :class:`~vibra.errors.CorruptArtifactError` naming the file and ``vibra doctor --repair``.

Every kind of artifact is registered once in :data:`KINDS` (:func:`register`); ``vibra doctor``
and ``vibra maintain gc`` loop over :func:`stores`, so a kind registered here is checked and
collected with no other change. A keyed kind (anomaly models: one store per machine scope and
model family) has ``keys`` folder levels between its path and each store.
"""

from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from vibra.errors import CorruptArtifactError
from vibra.storage.hashing import sha256_file
from vibra.storage import remote
from vibra.storage.lake import read_json, write_json

POINTER = "latest.json"
POINTER_SCHEMA = 1
MANIFEST = "manifest.json"
LAYOUT_MARK = ".layout.json"  # in artifacts/: the layout version the pointers were migrated to
LAYOUT = 1
TMP_PREFIX = ".tmp-"
REPAIR = "run `vibra doctor --repair`"


def new_version(tag: str | None = None, *, now: datetime | None = None) -> str:
    """A new version id: the UTC time to the microsecond, then ``tag`` (a random one when None).

    The time first makes names sort by age; the tag (a content hash, a model family) tells
    versions made in the same microsecond apart and says what they hold.
    """
    now = now or datetime.now(timezone.utc)
    return f"{now.astimezone(timezone.utc):%Y%m%dT%H%M%S%fZ}-{tag or uuid.uuid4().hex[:8]}"


def read_pointer(path: Path) -> str | None:
    """The version a ``latest.json`` names; None when there is no pointer file.

    Raises
    ------
    CorruptArtifactError
        The pointer is not JSON, not the one pointer format, or in a format of an older vibra.
    """
    doc = read_json(path)
    if doc is None:
        return None
    if isinstance(doc, dict) and doc.get("schema") == POINTER_SCHEMA and isinstance(doc.get("version"), str) \
            and doc["version"] and "/" not in doc["version"] and not doc["version"].startswith("."):
        return doc["version"]
    if isinstance(doc, dict) and doc and "schema" not in doc:
        raise CorruptArtifactError(path, "a pointer in an older vibra's format", "run `vibra migrate`")
    raise CorruptArtifactError(path, 'not a latest pointer ({"version": …, "schema": 1})', REPAIR)


def write_pointer(path: Path, version: str) -> None:
    write_json(path, {"version": version, "schema": POINTER_SCHEMA})


@dataclass(frozen=True)
class VersionedStore:
    """One folder of versions and its ``latest`` pointer (see the module doc).

    Parameters
    ----------
    root : Path
        The store folder.
    kind : str
        The registered kind it belongs to (for messages and reports).
    manifest : str
        File name of each version's manifest.
    collect : bool
        Whether ``gc`` may remove old versions (False: every version stays, e.g. embeddings,
        whose versions the lake's rows name).
    """

    root: Path
    kind: str = ""
    manifest: str = MANIFEST
    collect: bool = True

    @property
    def pointer(self) -> Path:
        return self.root / POINTER

    # -- reading ----------------------------------------------------------------------------------

    def latest(self) -> str | None:
        """The version ``latest.json`` names (None: no pointer yet; a damaged one raises)."""
        return read_pointer(self.pointer)

    def versions(self) -> list[str]:
        """Every committed version, newest first (hidden folders are unfinished writes)."""
        if not self.root.is_dir():
            return []
        return sorted((p.name for p in self.root.iterdir()
                       if p.is_dir() and not p.name.startswith(".") and p.name != POINTER), reverse=True)

    def read_manifest(self, version: str) -> dict:
        """The manifest of ``version``, unverified (no file hashes): cheap, for listings and lookups."""
        path = self.root / version / self.manifest
        doc = read_json(path)
        if doc is None:
            raise CorruptArtifactError(path, "missing" if (self.root / version).is_dir()
                                       else f"version {version} is not in {self.root}", REPAIR)
        if not isinstance(doc, dict):
            raise CorruptArtifactError(path, "not a manifest (a JSON object was expected)", REPAIR)
        return doc

    def latest_manifest(self) -> dict | None:
        """The manifest the pointer names, unverified; None when there is no pointer."""
        version = self.latest()
        return self.read_manifest(version) if version else None

    def problems(self, version: str) -> list[tuple[Path, str]]:
        """What keeps ``version`` from verifying, as (file, problem); empty when it verifies."""
        try:
            manifest = self.read_manifest(version)
        except CorruptArtifactError as exc:
            return [(Path(exc.path), exc.problem)]
        out = []
        files = manifest.get("files") or {}
        if not isinstance(files, dict):
            return [(self.root / version / self.manifest, "its 'files' entry is not a mapping")]
        for name, want in files.items():
            path = self.root / version / name
            if not path.is_file():
                out.append((path, "listed in the manifest but missing"))
                continue
            got = sha256_file(path)
            if got != want:
                out.append((path, f"sha256 {got[:12]}… does not match the manifest ({str(want)[:12]}…); the file "
                                  "was changed after it was written — refusing to load it"))
        return out

    def verifies(self, version: str) -> bool:
        return not self.problems(version)

    def newest_verifying(self) -> str | None:
        return next((v for v in self.versions() if self.verifies(v)), None)

    def load(self, version: str | None = None) -> tuple[Path, dict] | None:
        """(folder, manifest) of ``version`` (default: the latest) after checking every file's sha256;
        None when no version is asked for and there is no pointer."""
        version = version or self.latest()
        if version is None:
            return None
        bad = self.problems(version)
        if bad:
            path, problem = bad[0]
            raise CorruptArtifactError(path, problem, f"{REPAIR} (it points {self.kind or 'the store'} at the "
                                                      "newest version that verifies) or write a new version")
        return self.root / version, self.read_manifest(version)

    def read_frame(self, version: str, name: str, columns: list[str] | None = None):
        """The Parquet file ``name`` of ``version`` as a Polars frame (unverified: call :meth:`load` first
        where the file must match its manifest's sha256)."""
        import polars as pl

        return pl.read_parquet(self.root / version / name, columns=columns)

    # -- writing ----------------------------------------------------------------------------------

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A hidden folder to write a version's files into; removed unless :meth:`commit` moved it."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f"{TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            yield tmp
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def commit(self, staged: Path, version: str, manifest: dict, *, point: bool = True) -> dict:
        """Hash the files in ``staged``, write the manifest (``version`` and ``files`` added), rename the
        folder to ``version`` in one step and, with ``point``, switch ``latest`` to it. Returns the manifest."""
        written = sorted(p for p in staged.rglob("*") if p.is_file())
        files = {p.relative_to(staged).as_posix(): sha256_file(p) for p in written if p != staged / self.manifest}
        body = {**manifest, "version": version, "files": files}
        write_json(staged / self.manifest, body)
        for path in written:  # the rename publishes the folder: its files must be on disk first
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
        os.rename(staged, self.root / version)
        store = remote.of(self.root)
        if store is not None:  # on object storage: the version's files first, then the pointer names it
            store.push_dir(self.root / version)
        if point:
            self.point(version)
        return body

    def put(self, version: str, manifest: dict, *, point: bool = True) -> dict:
        """A version holding only its manifest (the data lives in the lake or in the manifest itself)."""
        with self.staging() as tmp:
            return self.commit(tmp, version, manifest, point=point)

    def point(self, version: str) -> None:
        """Switch ``latest`` to ``version`` (one atomic file replace)."""
        write_pointer(self.pointer, version)

    # -- garbage collection -----------------------------------------------------------------------

    def gc_plan(self, keep: int) -> list[str]:
        """Versions ``gc`` would remove: all but the ``keep`` newest, never the pointed one and never the
        newest version that verifies (so a damaged latest still leaves an intact one to go back to).

        Raises CorruptArtifactError when the pointer is damaged: which version is live is then unknown.
        """
        if not self.collect:
            return []
        versions = self.versions()
        if len(versions) <= keep:
            return []
        protected = set(versions[:keep])
        latest = self.latest()
        if latest:
            protected.add(latest)
        if not any(self.verifies(v) for v in sorted(protected, reverse=True)):
            intact = self.newest_verifying()
            if intact:
                protected.add(intact)
        return [v for v in versions if v not in protected]

    def remove(self, versions: list[str]) -> list[str]:
        removed = []
        store = remote.of(self.root)
        for v in versions:
            if store is not None:
                store.delete_dir(self.root / v)
            shutil.rmtree(self.root / v)
            removed.append(str(self.root / v))
        return removed


# -- the registry of kinds ------------------------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    """A kind of artifact: where its stores live under ``artifacts/``.

    ``keys``: folder levels between ``path`` and each store (0: the path is the store).
    """

    name: str
    path: str
    keys: int = 0
    manifest: str = MANIFEST
    collect: bool = True
    doc: str = ""


KINDS: dict[str, Kind] = {}


def register(name: str, path: str, *, keys: int = 0, manifest: str = MANIFEST, collect: bool = True,
             doc: str = "") -> Kind:
    """Register a kind of artifact: from then on ``doctor`` checks it and ``maintain gc`` collects it."""
    kind = Kind(name, path, keys, manifest, collect, doc)
    KINDS[name] = kind
    return kind


register("anomaly", "models/anomaly", keys=2, doc="anomaly models, one store per machine (or _fleet) and family")
register("forecast", "models/forecast", doc="forecast runs (the series are in the lake's forecasts table)")
register("clustering", "models/clustering", doc="clusterings (the labels are in the lake's clusters table)")
register("knn", "models/knn", doc="defect kNN classifiers")
register("embedding", "models/embedding", collect=False,
         doc="embedding definitions; kept: the lake's rows name their version")
register("snapshots", "snapshots", manifest="metadata.json", doc="frozen training sets")
register("readiness", "readiness", doc="readiness reports")
register("rul", "models/rul", doc="remaining-useful-life runs (the estimates are in the lake's rul table)")
register("reference", "references", keys=1, doc="each machine's chosen baseline recording (vibra baseline set)")


def store(artifacts: Path, kind: str, *keys: str) -> VersionedStore:
    """The store of ``kind`` (with its ``keys`` for a keyed kind, e.g. machine and family)."""
    k = KINDS[kind]
    if len(keys) != k.keys:
        raise ValueError(f"artifact kind {kind!r} takes {k.keys} key(s), got {len(keys)}")
    return VersionedStore(Path(artifacts, k.path, *keys), kind, k.manifest, k.collect)


def stores(artifacts: Path, kinds: list[str] | None = None) -> list[VersionedStore]:
    """Every store that exists on disk, of every registered kind (or of ``kinds``)."""
    out = []
    for name in kinds or list(KINDS):
        k = KINDS[name]
        level = [Path(artifacts, k.path)]
        for _ in range(k.keys):
            level = [p for folder in level if folder.is_dir() for p in sorted(folder.iterdir())
                     if p.is_dir() and not p.name.startswith(".")]
        out += [VersionedStore(p, name, k.manifest, k.collect) for p in level if p.is_dir()]
    return out


# -- migration of older layouts -------------------------------------------------------------------

def collect(artifacts: Path, keep: int, kinds: list[str] | None = None) -> dict[str, list[str]]:
    """Remove old versions from every store (see :meth:`VersionedStore.gc_plan`); returns the removed
    folders by kind. Every store is checked first: if any pointer is damaged, nothing is deleted."""
    plans, damaged = [], []
    for s in stores(artifacts, kinds):
        try:
            plans.append((s, s.gc_plan(keep)))
        except CorruptArtifactError as exc:
            damaged.append(exc)
    if damaged:
        more = f" (and {len(damaged) - 1} more damaged)" if len(damaged) > 1 else ""
        raise CorruptArtifactError(damaged[0].path, damaged[0].problem + more,
                                   "nothing was deleted; run `vibra doctor --repair`, then gc again")
    out: dict[str, list[str]] = {name: [] for name in (kinds or KINDS)}
    for s, plan in plans:
        out[s.kind] += s.remove(plan)
    return out


def _legacy(doc) -> bool:
    return isinstance(doc, dict) and doc.get("schema") != POINTER_SCHEMA


def migrate(artifacts: Path) -> list[str]:
    """Rewrite every pointer of an older vibra into the one format; returns what changed.

    Older shapes: ``{"version": v}`` (clustering, kNN, embedding, snapshots), ``{"forecast": v}``,
    ``{model_type: v, …}`` over one folder per machine holding every family's versions (each family
    becomes its own store: the version folders move under ``<machine>/<family>/``), and the
    readiness report stored as the pointer itself (it becomes a version). Snapshot metadata gains
    the ``files`` hashes from its ``data_sha256``. Idempotent: a pointer already in the one format
    is left alone, and a rerun after a crash finishes what is left (a pointer is rewritten last).
    """
    changed: list[str] = []
    artifacts = Path(artifacts)
    for name in ("forecast", "clustering", "knn", "embedding", "snapshots"):
        root = artifacts / KINDS[name].path
        try:
            doc = read_json(root / POINTER)
        except CorruptArtifactError:
            continue  # damaged, not old: `vibra doctor` reports it and --repair repoints it
        if _legacy(doc):
            version = doc.get("version") or doc.get("forecast")
            if not isinstance(version, str):
                raise CorruptArtifactError(root / POINTER, "a pointer of unknown shape", REPAIR)
            write_pointer(root / POINTER, version)
            changed.append(str(root / POINTER))
    snaps = artifacts / KINDS["snapshots"].path
    if snaps.is_dir():
        for meta_path in sorted(snaps.glob(f"*/{KINDS['snapshots'].manifest}")):
            try:
                meta = read_json(meta_path)
            except CorruptArtifactError:
                continue  # reported by `vibra doctor`
            if isinstance(meta, dict) and "files" not in meta and meta.get("data_sha256"):
                write_json(meta_path, {**meta, "files": {"data.parquet": meta["data_sha256"]}})
                changed.append(str(meta_path))
    changed += _migrate_anomaly(artifacts / KINDS["anomaly"].path)
    changed += _migrate_readiness(artifacts / KINDS["readiness"].path)
    return changed


def _migrate_anomaly(root: Path) -> list[str]:
    changed = []
    if not root.is_dir():
        return changed
    for scope in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        old = scope / POINTER
        try:
            doc = read_json(old)
        except CorruptArtifactError:
            doc = "damaged"  # each family then points at its newest version that verifies
        # version folders still at the scope level (a manifest directly inside) move under their family
        for folder in sorted(p for p in scope.iterdir() if p.is_dir() and (p / MANIFEST).is_file()):
            try:
                manifest = read_json(folder / MANIFEST)
            except CorruptArtifactError:
                manifest = None  # the family is in the version's name too; doctor reports the manifest
            family = manifest.get("model_type") if isinstance(manifest, dict) else None
            family = family or folder.name.split("-")[1]
            (scope / family).mkdir(exist_ok=True)
            os.rename(folder, scope / family / folder.name)
            changed.append(str(scope / family / folder.name))
        if isinstance(doc, dict):
            for family, version in doc.items():
                if isinstance(version, str) and (scope / family / version).is_dir():
                    write_pointer(scope / family / POINTER, version)
        elif doc == "damaged":
            for family in sorted(p for p in scope.iterdir() if p.is_dir() and not (p / POINTER).exists()):
                intact = VersionedStore(family, "anomaly").newest_verifying()
                if intact:
                    write_pointer(family / POINTER, intact)
        if doc is not None:
            old.unlink()
            changed.append(str(old))
    return changed


def _migrate_readiness(root: Path) -> list[str]:
    try:
        doc = read_json(root / POINTER)
    except CorruptArtifactError:
        return []  # damaged, not old: `vibra doctor` reports it
    if not _legacy(doc) or "status" not in doc:
        return []
    stamp = doc.get("generated_at")
    try:
        when = datetime.fromisoformat(stamp) if stamp else None
    except ValueError:
        when = None
    version = new_version("migrated", now=when)
    VersionedStore(root, "readiness").put(version, doc)
    return [str(root / POINTER)]


def ensure_layout(artifacts: Path) -> list[str]:
    """Migrate once per workspace (a mark file records it); cheap on every later call."""
    artifacts = Path(artifacts)
    mark = artifacts / LAYOUT_MARK
    if not artifacts.is_dir() or mark.exists():
        return []
    changed = migrate(artifacts)
    write_json(mark, {"layout": LAYOUT})
    return changed
