"""``vibra doctor``: does the lake agree with the ledger? Explain every finding; repair what is safe.

Checks: leftover temporary files and work folders of killed runs, and lake
files no commit of their table names (a writer killed between writing its file
and committing it: invisible to readers); lake files that do not read (each
file's Parquet footer, one file at a time) or that a table's log lists but are
gone; completed
recordings without windows; windows of recordings the ledger does not hold as
completed (orphans); windows stored twice; empty partition folders; the
catalog's schema version; files written before a column existed; and every
store of every registered artifact kind (``vibra.storage.artifacts.KINDS``):
its ``latest`` pointer reads and names a version that is there and verifies,
and every other version's manifest reads. A damaged file is a finding, never a
crash. ``--repair`` holds the ingest lock, so no ingest, rebuild or compaction
runs meanwhile; damaged files are moved aside (``data/.quarantine/``), never
deleted.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from vibra.errors import CorruptArtifactError
from vibra.settings import Settings
from vibra.storage import artifacts, lake, ledger, migrations, staging, tables
from vibra.workspace import Workspace

from vibra_pipelines.runs import recorded

QUARANTINE = staging.QUARANTINE  # under data/: damaged files moved aside by --repair, never deleted
REBUILT_BY = {"hourly": "rebuilt from the features table now", "scores": "scored again by the next `vibra detect`",
              "clusters": "written again by the next `vibra cluster`",
              "defects": "written again by the next `vibra cluster` or `vibra defects train`",
              "forecasts": "written again by `vibra forecast --force`"}


@dataclass
class Finding:
    check: str
    severity: str        # error (lake and ledger disagree) | warning | info
    count: int
    explanation: str
    repair: str          # what --repair does ("" = nothing safe to do)
    examples: list
    repaired: bool = False


def _doctor_counts(report: dict) -> dict:
    found = report["findings"]
    return {"findings": len(found), "errors": sum(1 for f in found if f["severity"] == "error" and not f["repaired"]),
            "repaired": sum(f["repaired"] for f in found)}


@recorded(lambda kw: "doctor" + (" --repair" if kw.get("repair") else "") + (" --rebuild-log" if kw.get("rebuild_log")
                                                                               else ""), _doctor_counts)
def check(ws: Workspace, settings: Settings, *, repair: bool = False, rebuild_log: bool = False) -> dict:
    """Every finding (and, with ``repair``, what was repaired); ``ok`` when no error remains.

    ``rebuild_log`` lets ``repair`` rebuild a damaged table log where the plan is uncertain (see
    :mod:`vibra.storage.repair`); without it such a table is left as it is and the finding says what
    the rebuild would do."""
    from contextlib import nullcontext

    ledger.ensure(ws)
    with ledger.ingest_lock(ws, settings) if repair else nullcontext():
        findings = _run_checks(ws, repair, rebuild_log)
        errors = [f for f in findings if f.severity == "error" and not f.repaired]
    return {"ok": not errors, "repair": repair, "checked_at": datetime.now(timezone.utc).isoformat(),
            "findings": [asdict(f) for f in findings]}


def _run_checks(ws: Workspace, repair: bool, rebuild_log: bool = False) -> list[Finding]:
    findings: list[Finding] = _log_findings(ws, repair, rebuild_log)
    if any(f.severity == "error" and not f.repaired for f in findings):
        # every other lake check reads the tables through their logs: they wait for the log's repair
        return findings + _artifact_findings(ws, repair)
    rows = ledger.current(ws)
    completed = {r["recording_id"]: r for r in rows if r["status"] == "completed"}
    expired = {r["recording_id"] for r in rows if r["status"] == "expired"}
    lost_findings, lost = _lost_commit_findings(ws, set(completed), repair)
    foreign, shared = _others(ws)
    findings += lost_findings + _leftover_findings(ws, lost, shared, repair)
    damage_findings, skip = _damage_findings(ws, foreign, repair)
    findings += damage_findings
    counts = tables.recording_window_counts(ws, skip)
    findings += _missing_findings(ws, completed, counts, skip, repair)
    counts.pop(None, None)  # rows without a recording id: a file of another schema, named by the damaged-file check
    findings += _window_findings(ws, completed, expired, counts, skip, foreign, repair)
    findings += _housekeeping_findings(ws, skip, repair)
    return findings + _artifact_findings(ws, repair)


def _lost_commit_findings(ws: Workspace, completed: set[str], repair: bool) -> tuple[list[Finding], list[Path]]:
    """Features files of completed recordings that no commit names (the commit that added them is lost)."""
    lost = staging.lost_commits(ws, completed)
    if not lost:
        return [], []
    f = Finding("uncommitted_completed_windows", "error", len(lost),
                "features files holding windows of recordings the ledger holds as completed, that no commit of the "
                "table names: the commit that added them is lost (a log file deleted); readers do not see them",
                "commit them back into the table (their Parquet footers and recordings checked first)",
                [str(p) for p in lost[:5]])
    if repair:
        from vibra.storage import hourly

        lake.commit(ws.table("features"), add=lost)
        hourly.rebuild(ws.lake, {lake.partition_of(p) for p in lost})
        f.repaired = True
    return [f], lost


def _leftover_findings(ws: Workspace, lost: list[Path], shared: bool, repair: bool) -> list[Finding]:
    """Temporary files, work folders and lake files no commit names, left by killed runs."""
    # on a shared store a file no commit names may be another workspace's (a writer of theirs killed): not judged
    left = [p for p in staging.leftovers(ws, untracked=not shared) if p not in set(lost)]
    if not left:
        return []
    f = Finding("leftover_temporary_files", "warning", len(left),
                "temporary files, work folders or lake files no commit names, left by runs that were killed; "
                "readers never see them, they only take space",
                f"delete the temporary files and work folders; move the lake files to {ws.data / QUARANTINE}/ "
                "(kept, not deleted)",
                [str(p) for p in left[:5]])
    if repair:
        staging.clean_leftovers(ws, untracked=not shared)
        f.repaired = True
    return [f]


def _damage_findings(ws: Workspace, foreign: set[Path], repair: bool) -> tuple[list[Finding], set[Path]]:
    """Lake files that do not read, ours and other writers'; and the files every later check must skip."""
    damaged = tables.damaged_files(ws)
    theirs = {p: why for p, why in damaged.items() if p in foreign}
    damaged = {p: why for p, why in damaged.items() if p not in foreign}
    found = [_lake_finding(ws, damaged, repair)] if damaged else []
    if theirs:
        found.append(Finding("damaged_lake_files_of_other_writers", "warning", len(theirs),
                             "damaged lake files that another workspace sharing this store committed; "
                             "its own `vibra doctor --repair` repairs them", "none here (left to their writer)",
                             [f"{p}: {why}" for p, why in list(theirs.items())[:5]]))
    # other writers' files are theirs to judge; repaired damaged files are moved aside, so no longer listed
    skip = set(foreign) | (set(theirs) if repair else set(damaged) | set(theirs))
    return found, skip


def _missing_findings(ws: Workspace, completed: dict[str, dict], counts: dict, skip: set[Path],
                      repair: bool) -> list[Finding]:
    """Completed recordings without any window in the features table."""
    unreadable = {m.group(1) for f in skip if f.parent.parent.parent.name == "features"
                  and (m := lake.OWN_FILE.match(f.name))}  # explained by the damaged-file finding
    missing = [r for rid, r in completed.items()
               if (r["n_windows"] or 0) > 0 and rid not in counts and rid[:16] not in unreadable]
    if not missing:
        return []
    f = Finding("completed_without_windows", "error", len(missing),
                "the ledger says these recordings were ingested but the features table has none of their windows "
                "(partitions deleted by hand, or a restore from an older backup)",
                "mark them pending so the next `vibra ingest` processes them again",
                [r["source_path"] for r in missing[:5]])
    if repair:
        now = datetime.now(timezone.utc)
        ledger.write_rows(ws, [{**r, "status": "pending", "updated_at": now,
                                "error": "windows missing (vibra doctor): re-ingested on the next run"}
                               for r in missing])
        f.repaired = True
    return [f]


def _window_findings(ws: Workspace, completed: dict[str, dict], expired: set[str], counts: dict, skip: set[Path],
                     foreign: set[Path], repair: bool) -> list[Finding]:
    """Windows of recordings the ledger does not hold as completed (orphans, earlier versions) and windows
    stored twice; repair keeps the ledger's recordings, one copy of each window."""
    orphans = sorted(rid for rid in counts if rid not in completed and rid not in expired)
    dups = sorted(rid for rid, (n, distinct) in counts.items() if n > distinct)
    if not (orphans or dups):
        return []
    found = []
    affected = tables.partitions_holding(ws, tables.FEATURES, set(orphans) | set(dups), skip)
    # an earlier version of a file whose content changed (kept beside the new one before ingest replaced them)
    earlier = ledger.ever_completed(ws) & set(orphans)
    killed = [rid for rid in orphans if rid not in earlier]
    if earlier:
        found.append(Finding("earlier_version_windows", "error", len(earlier),
                             "windows of an earlier version of a file whose content changed since; the "
                             "ledger holds the new version, so these are counted twice",
                             "remove the earlier version's windows", sorted(earlier)[:5]))
    if killed:
        found.append(Finding("orphan_windows", "error", len(killed),
                             "windows of recordings the ledger does not hold as completed (an ingest killed "
                             "between writing the windows and recording them); the next ingest of the file "
                             "would store them again",
                             "remove those windows; the next `vibra ingest` re-ingests their files", killed[:5]))
    if dups:
        found.append(Finding("duplicate_windows", "error", len(dups),
                             "windows stored more than once (same equipment, recording, channel, window index)",
                             "keep one copy of each window", dups[:5]))
    if repair:
        from vibra.storage import hourly

        for part in sorted(affected):  # keep the ledger's recordings, one copy of each window
            staging.keep_windows(ws, tables.FEATURES, part, set(completed) | expired, exclude=foreign)
        for f in found:
            f.repaired = True
        hourly.rebuild(ws.lake, {(p.parent.name.split("=", 1)[1], p.name.split("=", 1)[1]) for p in affected})
    return found


def _housekeeping_findings(ws: Workspace, skip: set[Path], repair: bool) -> list[Finding]:
    """Empty partition folders, the catalog's schema version, features files older than a column."""
    found = []
    empty = tables.empty_partitions(ws, tables.retainable())
    if empty:
        f = Finding("empty_partitions", "info", len(empty), "partition folders holding no file", "remove the folders",
                    [str(p) for p in empty[:5]])
        if repair:
            tables.remove_empty(empty)
            f.repaired = True
        found.append(f)
    have = ledger.schema_version(ws)
    if have != migrations.CURRENT:
        found.append(Finding("catalog_schema", "error", 1, f"catalog schema version {have}, this vibra expects "
                             f"{migrations.CURRENT}", "run `vibra migrate`", []))
    old = [f for f in tables.files_without(ws, tables.FEATURES, "embedding_version") if f not in skip]
    if old:
        found.append(Finding("features_schema", "info", len(old),
                             "features files written before the embedding carried its version; clustering and "
                             "the kNN leave their windows out", "none: `vibra features rebuild` recomputes them",
                             [str(p) for p in old[:5]]))
    return found


def _others(ws: Workspace) -> tuple[set[Path], bool]:
    """The lake files other workspaces committed (on a store several share), and whether any other writer
    committed to this lake at all. A file whose writer is unknown (adopted by a log rebuild, or written before
    commits were signed) is this workspace's only while no other writer is seen."""
    from vibra.storage import deltalog, remote

    me = lake.writer_id(ws.lake / "features")
    foreign, shared = set(), False
    for table in lake.tables_in(ws.lake):
        if table.name == lake.RAW:
            continue
        files = deltalog.read(table, remote.of(table)).files
        others = {h.writer for h in files.values()} - {"", me, deltalog.UNKNOWN}
        shared = shared or bool(others)
        foreign |= {table / rel for rel, h in files.items() if h.writer in others
                    or (others and h.writer in ("", deltalog.UNKNOWN))}
    return foreign, shared


def _log_findings(ws: Workspace, repair: bool, force: bool) -> list[Finding]:
    """A finding per table whose transaction log does not read whole; with ``repair``, the log rebuilt from what
    survives and the data files' footers (:mod:`vibra.storage.repair`) unless that would guess and not ``force``."""
    from vibra.storage import hourly, remote
    from vibra.storage import repair as rebuild

    me = lake.writer_id(ws.lake / "features")
    young = lake.commits.VACUUM_HOURS * 3600 if remote.of(ws.lake) is not None else None
    out, stale = [], set()
    for table in lake.tables_in(ws.lake):
        if table.name == lake.RAW:
            continue
        plan = rebuild.plan(table, me, young_s=young)
        if plan is None:
            continue
        what = plan.summary() + f"; the damaged log is kept in {ws.data / QUARANTINE}/{table.name}/"
        if plan.uncertain:
            what += ("; UNCERTAIN, so --repair leaves it as it is: " + "; ".join(plan.uncertain[:3])
                     + " — run `vibra doctor --repair --rebuild-log` to rebuild it anyway (nothing is deleted)")
        f = Finding("damaged_table_log", "error", len(plan.problems),
                    f"table {table.name}'s transaction log does not read (a commit or checkpoint deleted, truncated or "
                    "overwritten); every command reading the table stops and names the entry", what,
                    plan.problems[:5] + [f"{p}: {why}" for p, why in list(plan.quarantine.items())[:5]])
        if repair and (force or not plan.uncertain):
            rebuild.apply(plan, ws.data / QUARANTINE)
            f.repaired = True
            if table.name in ("features", "hourly"):  # hourly recomputed from features once both read
                stale |= {lake.partition_of(p) for p, _ in plan.keep + plan.adopt} | \
                    {lake.partition_of(p) for p in [*plan.gone, *plan.quarantine]}
        out.append(f)
    if stale and all(f.repaired for f in out):
        hourly.rebuild(ws.lake, stale)
    return out


def _lake_finding(ws: Workspace, damaged: dict[Path, str], repair: bool) -> Finding:
    f = Finding("damaged_lake_files", "error", len(damaged),
                "lake files that cannot be read (truncated or overwritten: a disk filled up, a copy was cut short); "
                "every command reading them stops and names the file",
                f"move them to {ws.data / QUARANTINE}/ (kept, not deleted); the recordings whose windows they held "
                "are marked for re-ingest when their source file is still there; hourly aggregates are rebuilt; "
                "scores, clusters, defects and forecasts are written again by their commands",
                [f"{path}: {problem}" for path, problem in list(damaged.items())[:5]])
    if repair:
        f.repaired = True
        reingest, notes = _quarantine(ws, damaged)
        if notes:
            f.examples += notes[:5]
        f.count = len(damaged)
        if reingest is not None:
            f.examples.append(f"{reingest} recording(s) marked for re-ingest")
    return f


def _quarantine(ws: Workspace, damaged: dict[Path, str]) -> tuple[int | None, list[str]]:
    """Move damaged lake files aside; mark their recordings for re-ingest; rebuild hourly aggregates."""
    from vibra.storage import hourly

    prefixes, rebuild, notes = set(), set(), []
    for path in damaged:
        rel = path.relative_to(ws.lake)
        staging.quarantine(ws, path)
        table = rel.parts[0]
        date, eid = rel.parts[1].split("=", 1)[1], rel.parts[2].split("=", 1)[1]
        if table in ("features", "raw") and (m := lake.OWN_FILE.match(path.name)):
            prefixes.add(m.group(1))
        if table in ("features", "hourly"):
            rebuild.add((date, eid))
        if table in REBUILT_BY:
            notes.append(f"{rel}: {REBUILT_BY[table]}")
    if rebuild:
        hourly.rebuild(ws.lake, rebuild)
    if not prefixes:
        return None, notes
    rows = ledger.completed_by_prefix(ws, prefixes)
    now = datetime.now(timezone.utc)
    again = [r for r in rows if r["source_path"] and Path(r["source_path"]).exists()]
    notes += [f"{r['source_path']}: source file gone, its windows cannot be rebuilt" for r in rows if r not in again]
    if again:
        ledger.write_rows(ws, [{**r, "status": "pending", "updated_at": now,
                                "error": "lake file damaged (vibra doctor): re-ingested on the next run"}
                               for r in again])
    return len(again), notes


def _repoint(stores: list[artifacts.VersionedStore]) -> None:
    """Point each store at its newest version that verifies; remove the pointer when none does."""
    for store in stores:
        intact = store.newest_verifying()
        if intact:
            store.point(intact)
        else:
            store.pointer.unlink(missing_ok=True)


def _quarantine_versions(ws: Workspace, versions: list[tuple[artifacts.VersionedStore, str]]) -> None:
    """Move artifact versions aside under ``artifacts/.quarantine/`` (kept, never deleted)."""
    for store, version in versions:
        target = ws.artifacts / QUARANTINE / (store.root / version).relative_to(ws.artifacts)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(store.root / version, target if not target.exists()
                   else target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}"))


def _artifact_findings(ws: Workspace, repair: bool) -> list[Finding]:
    """Every store of every registered artifact kind: pointer, pointed version, other versions' manifests."""
    pointers_bad: list[tuple[artifacts.VersionedStore, str]] = []
    dangling: list[tuple[artifacts.VersionedStore, str]] = []
    live_bad: list[tuple[artifacts.VersionedStore, str]] = []
    old_bad: list[tuple[artifacts.VersionedStore, str, str]] = []
    for store in artifacts.stores(ws.artifacts):
        try:
            latest = store.latest()
        except CorruptArtifactError as exc:
            pointers_bad.append((store, f"{exc.path}: {exc.problem}"))
            latest = None
        if latest and not (store.root / latest).is_dir():
            dangling.append((store, f"{store.pointer} names {latest}, which is gone"))
        elif latest and (bad := store.problems(latest)):
            live_bad.append((store, "; ".join(f"{path}: {problem}" for path, problem in bad)))
        for version in store.versions():
            if version == latest:
                continue
            try:
                store.read_manifest(version)
            except CorruptArtifactError as exc:
                old_bad.append((store, version, f"{exc.path}: {exc.problem}"))

    out = []
    for check, items, what in (
            ("damaged_pointer", pointers_bad, "`latest` pointers that do not read (corrupt JSON or not the pointer "
                                              "format); every command using that artifact stops and names the file"),
            ("dangling_latest_pointer", dangling, "`latest` pointers naming a version that is gone"),
            ("damaged_artifact", live_bad, "the version a `latest` pointer names does not verify (manifest damaged, "
                                           "or a file missing or changed since it was written): it is refused")):
        if not items:
            continue
        f = Finding(check, "error", len(items), what,
                    "point each at the newest version that verifies (remove the pointer when none does; then "
                    "retrain or rerun the command that makes it)", [text for _, text in items[:5]])
        if repair:
            if check == "damaged_pointer" and any("older vibra" in text for _, text in items):
                artifacts.migrate(ws.artifacts)
            _repoint([store for store, text in items if check != "damaged_pointer" or "older vibra" not in text])
            f.repaired = True
        out.append(f)
    if old_bad:
        f = Finding("damaged_old_versions", "warning", len(old_bad),
                    "older versions whose manifest does not read; nothing loads them unless a pointer is moved back",
                    f"move them to {ws.artifacts / QUARANTINE}/ (kept, not deleted)", [t for _, _, t in old_bad[:5]])
        if repair:
            _quarantine_versions(ws, [(store, version) for store, version, _ in old_bad])
            f.repaired = True
        out.append(f)
    return out
