"""Kills at named steps of an ingest batch: between the lake commit and the ledger write, and after both.

The ingest process is started with ``VIBRA_TEST_PAUSE=<step>`` (a test-only pause point in
``vibra_pipelines.ingest.batches._settle``), waits there, and is killed with SIGKILL. At that instant the ledger
must never say ``completed`` for a recording whose windows the lake's log does not hold (the order
commit → ledger); a plain rerun must then lose and double nothing. Swapping the two writes in
``_settle`` fails the first test (checked once by hand: the ledger then says completed for windows
no commit holds).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import datetime, timezone

import duckdb
import pytest

from vibra.settings import load_settings
from vibra.storage import catalog, lake
from vibra.workspace import init_workspace
from vibra_pipelines import doctor, ingest, synth

from conftest import vibra_exe

START = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _committed(ws) -> dict[str, int]:
    """recording_id → windows the features table's log holds (read through delta-rs itself: a folder without a log
    is no table here, though vibra reads a pre-Delta folder as its files lie)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        files = DeltaTable(str(ws.table("features"))).file_uris()
    except TableNotFoundError:
        return {}
    with duckdb.connect() as con:
        return dict(con.execute(f"SELECT recording_id, count(*) FROM {lake.READ_FILES} GROUP BY 1", [files]).fetchall())


def _completed(ws) -> set[str]:
    return {r[0] for r in catalog.query(ws.catalog_path,
                                        f"SELECT recording_id FROM {catalog.CURRENT} c WHERE status = 'completed'")}


@pytest.mark.parametrize("step", ["settle:committed", "settle:recorded"])
def test_a_kill_at_each_step_of_a_batch_keeps_ledger_and_lake_in_order_and_a_rerun_completes(tmp_path, step):
    ws, _ = init_workspace(tmp_path / "ws")
    export = tmp_path / "export"
    synth.run(export, n_equipment=2, days=0.25, seed=13, start=START, sensor_faults=False, workspace=ws)
    mark = tmp_path / "paused"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIBRA_")}
    env.update(VIBRA_TEST_PAUSE=step, VIBRA_TEST_PAUSE_MARK=str(mark))
    proc = subprocess.Popen([vibra_exe(), "ingest", str(export), "--home", str(ws.root)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not mark.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mark.exists(), proc.communicate()
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)

    committed, completed = _committed(ws), _completed(ws)
    assert completed <= set(committed), "the ledger says completed for windows no commit holds"
    assert committed, "the kill came before any commit: the test proves nothing"
    if step == "settle:committed":
        assert set(committed) - completed, "nothing committed and unrecorded: not between the two writes"
    else:
        assert completed == set(committed)

    settings = load_settings(ws.config_path, {})
    again = ingest.run(ws, settings, export)
    assert again.failed == 0
    counts = _committed(ws)
    lake.forget(ws.root)
    with duckdb.connect() as con:
        files = [str(f) for f in lake.partition_files(ws.table("features"))]
        total, distinct = con.execute(f"SELECT count(*), count(DISTINCT (recording_id, channel, window_index)) "
                                      f"FROM {lake.READ_FILES}", [files]).fetchone()
    assert total == distinct == 72 and _completed(ws) == set(counts) and len(counts) == 12
    assert doctor.check(ws, settings)["ok"]


def test_the_first_commit_of_a_fresh_features_table_takes_only_its_batch(tmp_path):
    """Files another thread staged but has not settled stay invisible through the table's first commit
    (what made ``settle:recorded`` above fail now and then: the first commit of a folder that was no table yet
    took every file lying there). Checked once without the ``open_features`` call: the commit then took both."""
    import polars as pl

    ws, _ = init_workspace(tmp_path / "ws")
    ws.ensure()
    frame = lambda rid: pl.DataFrame({"equipment_id": ["pump-1"], "recording_id": [rid], "channel": ["ch1"],  # noqa: E731
                                      "window_index": [0], "window_start": [START], "rms": [1.0]})
    from vibra.storage import tables

    tables.open_features(ws)  # what the ingest stage does before its workers start
    settled = tables.stage_features(ws, frame("a" * 64), "a" * 64)
    in_flight = tables.stage_features(ws, frame("b" * 64), "b" * 64)
    tables.commit_features(ws, settled)
    assert set(_committed(ws)) == {"a" * 64}
    assert in_flight[0].exists()
