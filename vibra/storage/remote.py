"""Object storage: the lake, the model artifacts and the kept raw waveforms at a URI.

``[lake] uri`` (or ``VIBRA_LAKE_URI``) empty keeps everything in the workspace folder. An
``s3://bucket/prefix`` URI puts the store there: the Delta tables at ``<uri>/<table>/`` (their logs
and Parquet files, readable by Spark, Trino, DuckDB or Polars without vibra), the artifact stores
at ``<uri>/_artifacts/``. Credentials and the region come from the standard AWS environment
(``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``AWS_REGION``); an
S3-compatible store (MinIO, Ceph, moto) is reached with ``AWS_ENDPOINT_URL``.

The workspace's ``data/lake`` and ``artifacts`` folders are then a private cache of this one
process: a file is written there first, uploaded whole (an object appears complete or not at
all) and only then committed to its table's log; a reader lists a table through its log on the
store and downloads the files it has not cached yet. Lake files never change once committed
(a replaced file is a new commit naming it again, with a new size or time), so a cached copy is
checked by size and modification time only. Nothing in the cache is needed by anyone else: two
machines sharing only the URI see the same lake. Concurrent commits to a table are ordered by the
store's conditional writes (``If-None-Match``, which S3 has had since 2024), as on a local disk.

One filesystem abstraction carries every byte: :mod:`pyarrow.fs` (``S3FileSystem``), whose
options delta-rs is given too (:meth:`Remote.storage_options`).
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from vibra.errors import StoreError

ARTIFACTS = "_artifacts"  # the artifact stores' prefix under the lake URI
LOCAL_ONLY = ("metrics",)  # folders of a mirrored root that stay this machine's (node_exporter reads its own metrics)


@dataclass(frozen=True)
class Remote:
    """A local folder mirrored at ``uri`` (``s3://bucket/prefix``)."""

    uri: str
    local: Path

    @property
    def _bucket_prefix(self) -> str:
        return self.uri.removeprefix("s3://").rstrip("/")

    def key(self, path: Path | str) -> str:
        """``bucket/prefix/<path relative to the local folder>``: a path for :attr:`fs`."""
        rel = Path(path).relative_to(self.local).as_posix()
        return self._bucket_prefix if rel == "." else f"{self._bucket_prefix}/{rel}"

    def url(self, path: Path | str) -> str:
        return "s3://" + self.key(path)

    def local_of(self, key: str) -> Path:
        rel = key.removeprefix(self._bucket_prefix).lstrip("/")
        return self.local / rel if rel else self.local

    @property
    def fs(self):
        return s3_filesystem()

    def storage_options(self) -> dict[str, str]:
        return delta_options()

    # -- moving bytes --------------------------------------------------------------------------------

    def upload(self, path: Path) -> None:
        """Put the local file ``path`` at its key (one PUT: the object appears whole or not at all)."""
        from pyarrow import fs as pafs

        pafs.copy_files(str(path), self.key(path), destination_filesystem=self.fs)

    def fetch(self, path: Path, size: int | None = None, mtime_ms: int | None = None, force: bool = False) -> Path:
        """The local copy of ``path``'s object, downloaded when it is missing or differs in size or
        modification time from what the log says (``size``/``mtime_ms``), or always with ``force``
        (replaced atomically: a reader sees the old copy or the new one); returns ``path``."""
        try:
            st = path.stat()
            if not force and (size is None or st.st_size == size) and \
                    (mtime_ms is None or int(st.st_mtime * 1000) == mtime_ms):
                return path
        except FileNotFoundError:
            pass
        from vibra.storage.atomic import replace_into, temp_path

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(path)
        try:
            download(self.key(path), tmp)
            if mtime_ms is not None:
                os.utime(tmp, ns=(mtime_ms * 1_000_000, mtime_ms * 1_000_000))
            replace_into(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path

    def fetch_all(self, items: Iterable[tuple]) -> None:
        """Fetch many files at once (a few downloads in flight: listing a table fetches its new files)."""
        todo = list(items)

        def one(item) -> None:
            try:
                self.fetch(*item)
            except FileNotFoundError:
                pass  # listed by the log but gone from the store: readers and `vibra doctor` name it

        if len(todo) <= 1:
            for item in todo:
                one(item)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(one, todo))

    def delete(self, paths: Iterable[Path]) -> None:
        for path in paths:
            try:
                self.fs.delete_file(self.key(path))
            except FileNotFoundError:
                pass

    def delete_dir(self, folder: Path) -> None:
        try:
            self.fs.delete_dir(self.key(folder))
        except FileNotFoundError:
            pass

    def _objects(self, folder: Path, suffix: str = "") -> list:
        from pyarrow import fs as pafs

        try:
            infos = self.fs.get_file_info(pafs.FileSelector(self.key(folder), recursive=True, allow_not_found=True))
        except FileNotFoundError:
            return []
        return [i for i in infos if i.type == pafs.FileType.File and i.path.endswith(suffix)]

    def shared(self, path: Path) -> bool:
        """Whether a file under the local folder belongs on the store: not in a hidden folder (a staged
        version, hourly's marks: this process's own) nor in a :data:`LOCAL_ONLY` one."""
        parts = Path(path).absolute().relative_to(self.local).parts
        return not (parts and parts[0] in LOCAL_ONLY) and not any(p.startswith(".") for p in parts[:-1])

    def listing(self, folder: Path, suffix: str = "", *, older_than_s: float | None = None) -> list[tuple[Path, int]]:
        """(local path, size) of every object under ``folder`` whose name ends with ``suffix`` (and, with
        ``older_than_s``, last written longer ago than that)."""
        import time

        cutoff = None if older_than_s is None else (time.time() - older_than_s) * 1e9
        return sorted((self.local_of(i.path), i.size) for i in self._objects(folder, suffix)
                      if cutoff is None or (i.mtime_ns is not None and i.mtime_ns < cutoff))

    def folders(self, folder: Path) -> list[Path]:
        """The local paths of the immediate sub-folders of ``folder`` on the store."""
        from pyarrow import fs as pafs

        infos = self.fs.get_file_info(pafs.FileSelector(self.key(folder), recursive=False, allow_not_found=True))
        return sorted(self.local_of(i.path) for i in infos if i.type == pafs.FileType.Directory)

    def size(self, path: Path) -> int | None:
        from pyarrow import fs as pafs

        info = self.fs.get_file_info(self.key(path))
        return info.size if info.type == pafs.FileType.File else None

    def pull(self, folder: Path | None = None) -> int:
        """Bring the local folder up to date with the store. The ``latest.json`` pointers first, always
        downloaded (one is rewritten in place with the same size, within the store's one-second times),
        then every other object missing locally or of another size: a version is uploaded before
        a pointer names it, so the second listing holds every version a fetched pointer names. Local
        copies are replaced atomically, never deleted first. Returns the files downloaded."""
        root = folder or self.local
        pointers = [i for i in self._objects(root, "latest.json") if i.path.endswith("/latest.json")]
        self.fetch_all((self.local_of(i.path), None, None, True) for i in pointers)
        stale = []
        for i in self._objects(root):  # a version's files never change once written: the size tells a torn copy
            path = self.local_of(i.path)
            if i.path.endswith("/latest.json") or not self.shared(path) or \
                    (path.is_file() and path.stat().st_size == i.size):
                continue
            stale.append((path, i.size, None, True))
        self.fetch_all(stale)
        return len(pointers) + len(stale)

    def push_dir(self, folder: Path) -> None:
        """Upload every file under ``folder`` (a published artifact version)."""
        files = [p for p in folder.rglob("*") if p.is_file()]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(self.upload, files))


# -- the registry: which local folders are mirrors of a store ------------------------------------------

_REMOTES: dict[Path, Remote] = {}
_GUARD = threading.Lock()


def register(local: Path, uri: str) -> Remote:
    remote = Remote(uri.rstrip("/"), Path(local).absolute())
    with _GUARD:
        _REMOTES[remote.local] = remote
    return remote


def unregister(local: Path) -> None:
    with _GUARD:
        _REMOTES.pop(Path(local).absolute(), None)


def of(path: Path | str) -> Remote | None:
    """The store a local path is mirrored to, or None (a plain local workspace: the common case)."""
    if not _REMOTES:
        return None
    p = Path(path).absolute()
    with _GUARD:  # a worker's threads register and unregister their private caches while others look up
        remotes = list(_REMOTES.items())
    for local, remote in remotes:
        if p == local or local in p.parents:
            return remote
    return None


def configure(ws, settings) -> Remote | None:
    """Point the workspace's lake and artifact folders at ``settings.lake.uri`` (None: stays local).
    Pulls the artifact stores (models, manifests, pointers) so every reader finds them locally."""
    raw = getattr(getattr(settings, "lake", None), "uri", "") or ""
    if not raw.strip():
        unregister(ws.lake)
        unregister(ws.artifacts)
        return None
    uri = validate_uri(raw)
    lake = register(ws.lake, uri)
    art = register(ws.artifacts, f"{lake.uri}/{ARTIFACTS}")
    try:
        _check_bucket(lake, ws)
        art.pull()
    except OSError as exc:
        raise StoreError(explain(exc, lake.uri)) from exc
    return lake


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_SEGMENT = re.compile(r"[A-Za-z0-9!_.*'()=+,@~-]+")


def validate_uri(uri: str) -> str:
    """``[lake] uri`` checked and normalised: ``s3://bucket[/prefix]`` with one valid bucket name and a prefix of
    plain names (no ``..``, ``.``, empty segment, whitespace or query). Raises ConfigError naming the problem."""
    from vibra.errors import ConfigError

    def bad(why: str) -> ConfigError:
        return ConfigError(f"[lake] uri = {uri!r}: {why}; use s3://bucket/prefix (one bucket, a prefix of plain "
                           "folder names), or leave it empty for the workspace's data/lake")

    if uri != uri.strip() or any(c.isspace() for c in uri):
        raise bad("it holds whitespace")
    if "?" in uri or "#" in uri:
        raise bad("a query string or fragment is not part of a lake's address")
    if not uri.startswith("s3://"):
        raise bad("not an s3:// URI")
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise bad("no bucket name")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise bad(f"{bucket!r} is not an S3 bucket name (3–63 lowercase letters, digits, dots and hyphens)")
    parts = prefix.rstrip("/").split("/") if prefix.rstrip("/") else []
    for part in parts:
        if part in ("", ".", ".."):
            raise bad("the prefix has an empty, '.' or '..' segment (it must stay inside the bucket)")
        if not _SEGMENT.fullmatch(part):
            raise bad(f"the prefix segment {part!r} has characters S3 keys should not")
    return "s3://" + "/".join([bucket, *parts])


def _check_bucket(lake: Remote, ws) -> None:
    """A missing bucket, or a store without the tables this workspace's ledger says it wrote, is an error on
    every command (not an empty lake: ingest would skip every file, status count 0)."""
    from pyarrow import fs as pafs

    bucket = lake.uri.removeprefix("s3://").split("/", 1)[0]
    if lake.fs.get_file_info(bucket).type == pafs.FileType.NotFound:
        raise StoreError(f"the lake's object store {lake.uri} failed: its bucket {bucket!r} does not exist; create it, "
                         "or fix [lake] uri")
    if lake.listing(ws.lake / "features" / "_delta_log"):
        return
    catalog = getattr(ws, "catalog_path", None)
    if catalog is None or not Path(catalog).exists():
        return
    import duckdb

    try:
        with duckdb.connect(str(catalog), read_only=True) as con:
            done = con.execute("SELECT count(DISTINCT recording_id) FROM recordings WHERE status = 'completed' "
                               "AND coalesce(n_windows, 0) > 0").fetchone()[0]
    except duckdb.Error:
        return  # (the ledger's own checks say what is wrong with it)
    if done:
        raise StoreError(f"the lake at {lake.uri} holds no features table, but this workspace's ledger holds {done} "
                         "ingested recording(s): [lake] uri points at an empty or other store; point it at the lake "
                         "this ledger was written to, or copy the lake there first (docs/operations.md)")


_STORE_MARKS = ("AWS Error", "S3 error", "Generic S3", "error sending request", "Could not connect", "ObjectStore",
                "NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch")


def failure(exc: BaseException) -> bool:
    """Whether an exception is the object store's (unreachable, refused, no such bucket), not a file's or a bug."""
    text = str(exc)
    return bool(_REMOTES) and any(mark in text for mark in _STORE_MARKS)


def explain(exc: BaseException, uri: str | None = None) -> str:
    """One line: the store failed, why (its first line), and what to check."""
    where = uri or (next(iter(_REMOTES.values())).uri if _REMOTES else "the object store")
    first = (str(exc).strip().splitlines() or [""])[0][:240]
    return (f"the lake's object store {where} failed ({first}); check the bucket, AWS_ENDPOINT_URL, the credentials "
            "(AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and the network, then run the command again")


# -- the filesystem and delta-rs's options, from the standard AWS environment -------------------------

def download(key: str, dest: Path) -> None:
    """Copy the object ``key`` (``bucket/path``) of the AWS environment's store to the local file ``dest``."""
    with s3_filesystem().open_input_stream(key) as src, open(dest, "wb") as dst:
        while chunk := src.read(8 << 20):
            dst.write(chunk)


def _endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def _region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


_FS: dict[tuple, object] = {}


def s3_filesystem():
    """One ``pyarrow.fs.S3FileSystem`` per process and environment."""
    from pyarrow import fs as pafs

    endpoint = _endpoint()
    key = (endpoint, _region(), os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_PROFILE"))
    fs = _FS.get(key)
    if fs is None:
        kwargs: dict = {"region": _region()}
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            kwargs.update(endpoint_override=host or scheme, scheme=scheme if host else "https")
        if os.environ.get("AWS_ACCESS_KEY_ID"):
            kwargs.update(access_key=os.environ["AWS_ACCESS_KEY_ID"],
                          secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
                          session_token=os.environ.get("AWS_SESSION_TOKEN"))
        fs = _FS[key] = pafs.S3FileSystem(**kwargs)
    return fs


def delta_options() -> dict[str, str]:
    """delta-rs's ``storage_options`` for the same store (credentials it reads from the environment)."""
    out = {"AWS_REGION": _region()}
    endpoint = _endpoint()
    if endpoint:
        out["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.startswith("http://"):
            out["AWS_ALLOW_HTTP"] = "true"
    return out
