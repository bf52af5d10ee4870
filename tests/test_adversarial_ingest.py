"""Ingest under a hostile export and a bad day: the right thing blamed, no poison, files that change.

Real ingests into real workspaces. Environment failures are made for real: a tmpfs of a few
hundred kB mounted over the lake (disk full), a read-only bind mount over a lake partition, a
source file made unreadable to the unprivileged user the ingest runs as. Those need root and
mount(2); where the machine refuses, the test says so and skips (CI runs as root).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from hypothesis.extra.numpy import arrays

from vibra.settings import load_settings
from vibra.storage import lake, catalog
from vibra.workspace import init_workspace

from vibra.ingest import sources
from vibra_pipelines import doctor, ingest, maintain, status, synth
from conftest import run_vibra, vibra_exe

START = datetime(2026, 3, 1, tzinfo=timezone.utc)
RATE = 12_800  # synth's sample rate; [equipment.motor-01] sample_rate_hz in the plant's vibra.toml


@pytest.fixture
def plant(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    source = tmp_path / "export"
    synth.run(source, n_equipment=2, days=0.25, seed=11, start=START, sensor_faults=False, workspace=ws)
    return ws, source  # 12 files, 3 windows × 2 channels each: 72 windows


def _settings(ws):
    return load_settings(ws.config_path, {})


def _set(ws, section: str, line: str) -> None:
    """Add ``line`` to ``[section]`` of the workspace's vibra.toml (creating the section if needed)."""
    text = ws.config_path.read_text()
    header = f"[{section}]\n"
    text = text.replace(header, header + line + "\n", 1) if header in text else text + f"\n{header}{line}\n"
    ws.config_path.write_text(text)


def _csv(path: Path, rows: int = RATE, seed: int = 0, time: np.ndarray | None = None) -> Path:
    """A two-channel CSV recording (``time`` column when given)."""
    rng = np.random.default_rng(seed)
    data = {"x": rng.standard_normal(rows).round(5), "y": rng.standard_normal(rows).round(5)}
    if time is not None:
        data = {"time": time, **data}
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(data).write_csv(path)
    return path


def _rows(ws) -> dict[str, dict]:
    """The current ledger row of every file, by file name."""
    names = [n for n, _ in catalog.RECORDING_COLUMNS]
    got = catalog.query(ws.catalog_path, f"SELECT {', '.join(names)} FROM {catalog.CURRENT} c")
    return {Path(r[2]).name: dict(zip(names, r)) for r in got}


def _lake_counts(ws) -> tuple[int, int, int]:
    """(feature rows, distinct window keys, hourly n_windows summed)."""
    con = duckdb.connect()
    feats = f"read_parquet('{ws.lake}/features/*/*/*.parquet', hive_partitioning = false)"
    total, distinct = con.execute(f"SELECT count(*), count(DISTINCT (recording_id, channel, window_index)) "
                                  f"FROM {feats}").fetchone()
    hourly = con.execute(f"SELECT coalesce(sum(n_windows), 0) FROM read_parquet('{ws.lake}/hourly/*/*/*.parquet', "
                         "hive_partitioning = false)").fetchone()[0]
    return total, distinct, hourly


def _windows_of(ws, recording_id: str) -> int:
    return duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{ws.lake}/features/*/*/*.parquet', "
                                    "hive_partitioning = false) WHERE recording_id = ?", [recording_id]).fetchone()[0]


def _all_good(ws, completed: int, windows: int) -> None:
    st_ = status.run(ws)
    assert st_["completed"] == completed and st_["pending"] == st_["processing"] == 0, st_
    assert _lake_counts(ws) == (windows, windows, windows)
    assert not list((ws.lake / "hourly" / ".dirty").glob("*"))


# -- real environment failures (root + mount) ------------------------------------------------------

def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


def _can_mount() -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    probe = Path(tempfile.mkdtemp())
    try:
        ok = _mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)).returncode == 0
        if ok:
            subprocess.run(["umount", str(probe)], check=True)
        return ok
    finally:
        probe.rmdir()


needs_mount = pytest.mark.skipif(not _can_mount(), reason="needs root and mount(2) for a real full / read-only disk")


def _fill(folder: Path) -> None:
    """Write zeros into ``folder`` until its file system is full."""
    with open(folder / ".filler", "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass


def _full_tmpfs(folder: Path, keep: bool = False) -> None:
    """Mount a tmpfs over ``folder`` (its contents copied in first when ``keep``) and fill it."""
    saved = None
    if keep:
        saved = Path(tempfile.mkdtemp())
        shutil.copytree(folder, saved / "copy")
    folder.mkdir(parents=True, exist_ok=True)
    assert _mount("-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)).returncode == 0
    if saved is not None:
        shutil.copytree(saved / "copy", folder, dirs_exist_ok=True)
        shutil.rmtree(saved)
    _fill(folder)


# each kind of write, the folder a full disk is put under, and what the message must name
FULL_AT = {"data_file": ("features/date=2026-03-01/equipment=pump-02", "equipment=pump-02"),
           "table_creation": ("features/_delta_log", "_delta_log"),
           "delta_commit": ("features/_delta_log", "_delta_log"),
           "ledger": ("..", "catalog.duckdb")}


@needs_mount
@pytest.mark.parametrize("kind", list(FULL_AT))
def test_disk_full_at_each_kind_of_write_blames_no_file_and_a_plain_rerun_completes_every_file(plant, kind):
    ws, source = plant
    done_before = 0
    if kind == "delta_commit":  # the table exists: one machine ingested first
        shutil.move(source / "pump-02", source.parent / "later")
        done_before = ingest.run(ws, _settings(ws), source).new
        shutil.move(source.parent / "later", source / "pump-02")
    folder, named = FULL_AT[kind]
    target = (ws.lake / folder).resolve()
    try:
        _full_tmpfs(target, keep=kind in ("delta_commit", "ledger"))
        proc = run_vibra("-v", "ingest", str(source), "--home", str(ws.root))
        assert proc.returncode == 1, proc.stdout + proc.stderr
        last = proc.stderr.strip().splitlines()[-1]
        # (the ledger: its first write, the run's own record, fails before the run starts)
        stopped = "" if kind == "ledger" else "ingest stopped: "
        assert last.startswith(f"error: {stopped}no space left writing "), proc.stderr[-3000:]
        assert named in last and ("no file was marked failed" in last or kind == "ledger"), last
        assert "moving that file" not in last and "bug" not in last
        assert kind == "ledger" or "Traceback" in proc.stderr  # -v: the cause's traceback logged
    finally:
        subprocess.run(["umount", "-l", str(target)])  # space comes back (the ledger: as it was before the run)
    assert status.run(ws)["failed"] == 0
    again = ingest.run(ws, _settings(ws), source)
    assert again.failed == 0 and again.new + done_before <= 12
    _all_good(ws, 12, 72)


@needs_mount
def test_read_only_lake_partition_blames_no_file_and_a_plain_rerun_completes(plant):
    ws, source = plant
    part = ws.lake / "features" / "date=2026-03-01" / "equipment=pump-02"
    part.mkdir(parents=True)
    assert _mount("--bind", str(part), str(part)).returncode == 0
    try:
        assert _mount("-o", "remount,ro,bind", str(part)).returncode == 0
        with pytest.raises(ingest.IngestStopped, match="cannot write .*Read-only file system.*no file was marked failed"):
            ingest.run(ws, _settings(ws), source)
        assert status.run(ws)["failed"] == 0
    finally:
        subprocess.run(["umount", str(part)])
    again = ingest.run(ws, _settings(ws), source)
    assert again.failed == 0
    _all_good(ws, 12, 72)


def _without_dac_override(args: list[str]) -> subprocess.CompletedProcess:
    """Run ``vibra`` so that file modes apply: root reads every file whatever its mode unless the
    process lacks CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (dropped here from the bounding set)."""
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIBRA_")}
    return subprocess.run([*prefix, vibra_exe(), *args], env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.skipif(os.geteuid() == 0 and not shutil.which("setpriv"), reason="root needs setpriv to honour file modes")
def test_unreadable_source_fails_with_reason_and_is_retried_once_readable(plant):
    ws, source = plant
    locked = source / "motor-01" / "motor-01_2026-03-01T01-00-00.csv"
    locked.chmod(0)
    sub = source / "motor-01" / "closed"
    _csv(sub / "late_2026-03-01T02-30-00.csv")
    sub.chmod(0)
    try:
        first = _without_dac_override(["ingest", str(source), "--home", str(ws.root), "--json"])
        assert first.returncode == 1, first.stderr
        got = json.loads(first.stdout)
        assert got["new"] == 11 and got["failed"] == 1
        assert "cannot read (Permission denied)" in got["failures"][str(locked)]
        assert any(n.startswith(f"{sub}: cannot list this folder (Permission denied)") for n in got["notes"]), got
    finally:
        locked.chmod(0o644)  # chmod changes neither size nor mtime: the failure's kind brings the file back
        sub.chmod(0o755)
    second = _without_dac_override(["ingest", str(source), "--home", str(ws.root), "--json"])
    assert second.returncode == 0, second.stderr
    got = json.loads(second.stdout)
    assert (got["new"], got["failed"]) == (2, 0)
    assert _rows(ws)[locked.name]["status"] == "completed"
    _all_good(ws, 13, 78)


# -- poison files ------------------------------------------------------------------------------------

def test_time_column_in_nanoseconds_fails_its_file_and_the_batch_goes_on(plant):
    """Each sample 3e9 "seconds" apart: the sample rate is 3e-10 Hz and timestamps overflow."""
    ws, source = plant
    _csv(source / "motor-01" / "ns_2026-03-01T00-30-00.csv", time=np.arange(RATE) * 3e9)
    good = _csv(source / "motor-01" / "good_2026-03-01T00-40-00.csv", seed=1)
    result = ingest.run(ws, _settings(ws), source)
    assert result.new == 13 and result.failed == 1
    reason = result.failures[str(source / "motor-01" / "ns_2026-03-01T00-30-00.csv")]
    # the machine has a configured rate, so the reader refuses the column first (100 % apart from it);
    # without one the span check does (max_span_s) — either way one clear line, no timestamp built
    assert ("max_span_s" in reason and "check the time column" in reason) or \
        ("time column" in reason and "sample_rate_hz = 12800" in reason and "100.0 % apart" in reason), reason
    assert _rows(ws)[good.name]["status"] == "completed"
    again = ingest.run(ws, _settings(ws), source)  # no poison: the rerun runs and has nothing to do
    assert (again.new, again.failed, again.skipped) == (0, 0, 14)
    _all_good(ws, 13, 78)


def test_absurd_sample_rate_setting_fails_the_file_and_a_fixed_setting_retries_it(plant):
    ws, source = plant
    _csv(source / "slowpoke" / "a_2026-03-01T00-00-00.csv")
    ws.config_path.write_text(ws.config_path.read_text() + "\n[equipment.slowpoke]\nsample_rate_hz = 1e-300\n")
    result = ingest.run(ws, _settings(ws), source)
    assert result.new == 12 and result.failed == 1
    assert "1e-300 Hz span" in next(iter(result.failures.values()))
    assert ingest.run(ws, _settings(ws), source).failed == 0  # same settings: left alone
    ws.config_path.write_text(ws.config_path.read_text().replace("1e-300", "12800"))
    fixed = ingest.run(ws, _settings(ws), source)  # the file did not change; its settings did
    assert (fixed.new, fixed.failed) == (1, 0)
    _all_good(ws, 13, 78)


@pytest.mark.parametrize("name, reason", [
    ("far_9999-01-01T00-00-00.csv", "ends after now + [ingest] max_clock_skew_s"),
    ("old_1960-01-01T00-00-00.csv", "before 1970"),
])
def test_times_outside_a_sane_range_fail_the_file(plant, name, reason):
    ws, source = plant
    _csv(source / "motor-01" / name)
    result = ingest.run(ws, _settings(ws), source)
    assert result.new == 12 and result.failed == 1
    assert reason in result.failures[str(source / "motor-01" / name)]
    assert status.run(ws)["last_recorded_at"].startswith("2026-03-01")


def test_symlink_loops_dangling_links_and_odd_names_are_recorded_not_fatal(plant):
    ws, source = plant
    folder = source / "motor-01"
    (folder / "loop.csv").symlink_to("loop.csv")
    (folder / "sub").mkdir()
    (folder / "sub" / "back").symlink_to("..")  # a folder loop: not followed
    (folder / "dangling.csv").symlink_to(".later/rec_2026-03-01T00-50-00.csv")
    raw = os.fsencode(folder) + b"/caf\xe9_2026-03-01T00-20-00.csv"
    with open(raw, "wb") as fh:
        fh.write(b"x,y\n" + b"0.1,0.2\n" * 5000)
    result = ingest.run(ws, _settings(ws), source)
    assert result.new == 12 and result.failed == 3
    failures = result.failures
    assert "symlink loop" in failures[str(folder / "loop.csv")]
    assert "dangling symlink" in failures[str(folder / "dangling.csv")]
    assert "not valid UTF-8" in failures[str(folder) + "/caf\\xe9_2026-03-01T00-20-00.csv"]
    assert any("symlinked folder not followed" in n for n in result.notes)
    again = ingest.run(ws, _settings(ws), source)
    assert again.new == 0 and again.failed == 2  # loop and dangling link are looked at again; the name is not
    _csv(folder / ".later" / "rec_2026-03-01T00-50-00.csv", seed=9)  # the link's target arrives
    third = ingest.run(ws, _settings(ws), source)
    assert third.new == 1 and _rows(ws)["dangling.csv"]["status"] == "completed"


def test_a_file_vanishing_between_listing_and_stat_is_a_warning(plant, monkeypatch):
    ws, source = plant
    doomed = _csv(source / "motor-01" / "doomed_2026-03-01T00-10-00.csv")
    walk = os.walk

    def racing_walk(top, *args, **kwargs):  # another process deletes the file right after the listing
        for folder, dirs, names in walk(top, *args, **kwargs):
            if doomed.name in names:
                doomed.unlink()
            yield folder, dirs, names

    monkeypatch.setattr(sources.os, "walk", racing_walk)
    result = ingest.run(ws, _settings(ws), source)
    assert result.new == 12 and result.failed == 0
    assert any(doomed.name in n and "vanished" in n for n in result.notes)
    assert doomed.name not in _rows(ws)


def test_symlink_leaving_the_source_is_refused_and_its_content_never_echoed(plant):
    ws, source = plant
    secret = "root:$6$" + "S3CRET" * 8 + ":19000:0:99999:7:::"
    outside = source.parent / "shadow"
    outside.write_text(secret + "\n" + secret + "\n")
    (source / "motor-01" / "shadow.csv").symlink_to(outside)
    (source / "elsewhere").symlink_to(source.parent)  # a machine folder pointing out of the export
    inside = source / "motor-01" / "leak_2026-03-01T00-10-00.csv"
    inside.write_text("x\n" + secret + "\n")  # content inside the export: quoted at most in part
    proc = run_vibra("ingest", str(source), "--home", str(ws.root), "--json")
    assert proc.returncode == 1
    got = json.loads(proc.stdout)
    assert "symlink leaves the source folder" in got["failures"][str(source / "motor-01" / "shadow.csv")]
    assert "symlink leaves the source folder" in got["failures"][str(source / "elsewhere")]
    assert "has text at row 1" in got["failures"][str(inside)]
    errors = " ".join(r[0] for r in catalog.query(ws.catalog_path, "SELECT error FROM recordings WHERE error IS NOT NULL"))
    for text in (proc.stdout, proc.stderr, errors):
        assert secret not in text and "S3CRET" * 4 not in text  # at most 24 escaped characters of a file quoted


# -- files that change ---------------------------------------------------------------------------------

def _grow(path: Path, rows: int, seed: int) -> None:
    extra = np.random.default_rng(seed).standard_normal((rows, 2)).round(5)
    with open(path, "a") as fh:
        fh.writelines(f"{a},{b}\n" for a, b in extra)


def test_a_grown_file_replaces_its_windows(plant):
    ws, source = plant
    ingest.run(ws, _settings(ws), source)
    path = source / "motor-01" / "motor-01_2026-03-01T01-00-00.csv"
    old_id = _rows(ws)[path.name]["recording_id"]
    _grow(path, RATE, seed=5)  # 1 s more: 6 windows per channel instead of 3
    again = ingest.run(ws, _settings(ws), source)
    assert (again.new, again.failed) == (1, 0)
    row = _rows(ws)[path.name]
    assert row["recording_id"] != old_id and row["n_windows"] == 12 and row["size_bytes"] == path.stat().st_size
    assert _windows_of(ws, old_id) == 0 and _windows_of(ws, row["recording_id"]) == 12
    _all_good(ws, 12, 72 - 6 + 12)
    report = doctor.check(ws, _settings(ws))
    assert report["ok"], report["findings"]


def test_a_rewritten_file_replaces_its_windows_even_after_compaction(plant):
    ws, source = plant
    ingest.run(ws, _settings(ws), source)
    maintain.compact(ws, _settings(ws))  # the old windows now sit in a merged file with other recordings
    path = source / "motor-01" / "motor-01_2026-03-01T02-00-00.csv"
    old_id = _rows(ws)[path.name]["recording_id"]
    _csv(path, rows=RATE, seed=42)  # rewritten in place: same length, other samples
    again = ingest.run(ws, _settings(ws), source)
    assert (again.new, again.failed) == (1, 0)
    new_id = _rows(ws)[path.name]["recording_id"]
    assert new_id != old_id and _windows_of(ws, old_id) == 0 and _windows_of(ws, new_id) == 6
    _all_good(ws, 12, 72)  # hourly n_windows unchanged: the hour holds the new version only


def test_on_change_refuse_keeps_the_old_version(plant):
    ws, source = plant
    ingest.run(ws, _settings(ws), source)
    _set(ws, "ingest", 'on_change = "refuse"')
    path = source / "motor-01" / "motor-01_2026-03-01T03-00-00.csv"
    old_id = _rows(ws)[path.name]["recording_id"]
    _grow(path, RATE, seed=6)
    again = ingest.run(ws, _settings(ws), source)
    assert (again.new, again.failed) == (0, 1)
    assert 'on_change = "refuse"' in again.failures[str(path)]
    row = _rows(ws)[path.name]
    assert row["status"] == "completed" and row["recording_id"] == old_id
    _all_good(ws, 12, 72)


def test_a_file_appended_during_its_own_ingest_is_deferred(plant, monkeypatch):
    ws, source = plant
    path = source / "motor-01" / "motor-01_2026-03-01T04-00-00.csv"
    from vibra_pipelines.ingest import compute

    real_open = compute.open_guarded

    def open_then_append(p, *args, **kwargs):  # the recorder appends right after the file was opened, while it is read
        recording = real_open(p, *args, **kwargs)
        if Path(p) == path and not getattr(open_then_append, "done", False):
            open_then_append.done = True
            _grow(path, 4096, seed=7)
        return recording

    monkeypatch.setattr(compute, "open_guarded", open_then_append)
    result = ingest.run(ws, _settings(ws), source)
    assert (result.new, result.deferred, result.failed) == (11, 1, 0)
    assert any("deferred to the next run" in n for n in result.notes)
    assert _rows(ws)[path.name]["status"] == "pending"
    assert _lake_counts(ws)[0] == 66  # none of its windows stored
    again = ingest.run(ws, _settings(ws), source)
    row = _rows(ws)[path.name]
    assert again.new == 1 and row["status"] == "completed"
    assert row["n_samples"] == RATE + 4096 and row["size_bytes"] == path.stat().st_size
    _all_good(ws, 12, 66 + 8)


def test_retry_failed_retries_every_failed_file(plant):
    ws, source = plant
    (source / "motor-01" / "bad.csv").write_text("x,y\n0.1,oops\n")
    assert ingest.run(ws, _settings(ws), source).failed == 1
    assert ingest.run(ws, _settings(ws), source).failed == 0  # unchanged: left alone
    proc = run_vibra("ingest", str(source), "--home", str(ws.root), "--retry-failed", "--json")
    assert proc.returncode == 1 and json.loads(proc.stdout)["failed"] == 1


# -- the time column, fuzzed ------------------------------------------------------------------------------

FUZZ_TOML = "[features]\nframe_length = 128\nhop_length = 128\n"
N = 512

times = st.one_of(
    st.builds(lambda step: np.arange(N) * step, st.floats(1e-9, 1e12)),                            # any constant step
    st.builds(lambda at, jump: np.where(np.arange(N) >= at, jump, 0.0) + np.arange(N) / 1000.0,
              st.integers(1, N - 1), st.floats(-1e15, 1e15)),                                   # one jump
    arrays(np.float64, N, elements=st.floats(-1e300, 1e300, allow_nan=False)),                   # anything
)


@hsettings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(t=times)
def test_time_columns_never_crash_the_batch(tmp_path_factory, t):
    """Whatever the time column holds, the batch runs: the file completes or fails with its reason,
    the good file beside it completes, and the lake holds exactly the completed windows."""
    root = tmp_path_factory.mktemp("fuzz")
    ws, _ = init_workspace(root / "ws")
    ws.config_path.write_text(FUZZ_TOML)
    source = root / "export"
    _csv(source / "m1" / "fuzz_2026-03-01T00-00-00.csv", rows=N, time=t)
    _csv(source / "m1" / "good_2026-03-01T01-00-00.csv", rows=N, seed=1, time=np.arange(N) / 1000.0)
    result = ingest.run(ws, _settings(ws), source)
    assert result.new + result.failed == 2 and _rows(ws)["good_2026-03-01T01-00-00.csv"]["status"] == "completed"
    for path, reason in result.failures.items():
        assert path.endswith("fuzz_2026-03-01T00-00-00.csv") and reason.startswith(path)
    windows = sum(r["n_windows"] or 0 for r in _rows(ws).values() if r["status"] == "completed")
    assert _lake_counts(ws) == (windows, windows, windows)


def test_doctor_names_windows_of_an_earlier_file_version(plant):
    """A lake from an older vibra (or a restore) holding a changed file's old windows beside the new ones."""
    ws, source = plant
    ingest.run(ws, _settings(ws), source)
    path = source / "motor-01" / "motor-01_2026-03-01T03-00-00.csv"
    old_id = _rows(ws)[path.name]["recording_id"]
    (old_file,) = ws.lake.glob(f"features/date=*/equipment=motor-01/part-{old_id[:16]}.parquet")
    kept = old_file.read_bytes()
    _csv(path, rows=RATE, seed=43)
    ingest.run(ws, _settings(ws), source)
    old_file.write_bytes(kept)  # the earlier version's windows are back beside the new ones
    lake.commit(ws.table("features"), add=[old_file])  # (a restore of the table, log included)
    report = doctor.check(ws, _settings(ws))
    checks = {f["check"]: f for f in report["findings"]}
    assert not report["ok"] and "orphan_windows" not in checks
    assert checks["earlier_version_windows"]["examples"] == [old_id]
    repaired = doctor.check(ws, _settings(ws), repair=True)
    assert {f["check"] for f in repaired["findings"] if f["repaired"]} >= {"earlier_version_windows"}
    assert doctor.check(ws, _settings(ws))["ok"]
    _all_good(ws, 12, 72)


def test_a_changed_file_whose_copy_exists_passes_its_old_version_to_the_copy(plant):
    ws, source = plant
    path = source / "motor-01" / "motor-01_2026-03-01T01-00-00.csv"
    shutil.copy(path, source / "motor-01" / "z_copy_2026-03-01T01-00-00.csv")
    ingest.run(ws, _settings(ws), source)
    old_id = _rows(ws)[path.name]["recording_id"]
    assert _rows(ws)["z_copy_2026-03-01T01-00-00.csv"]["status"] == "duplicate"
    _csv(path, rows=RATE, seed=44)
    again = ingest.run(ws, _settings(ws), source)
    assert (again.new, again.failed) == (1, 0)
    heir = _rows(ws)["z_copy_2026-03-01T01-00-00.csv"]
    assert heir["status"] == "completed" and heir["recording_id"] == old_id and heir["n_windows"] == 6
    assert _windows_of(ws, old_id) == 6  # the copy still holds that content: its windows stay
    _all_good(ws, 13, 78)
    assert doctor.check(ws, _settings(ws))["ok"]
