"""Catalog schema versions and the migrations between them.

Version 1 is the first released catalog (ledger, runs, meta). Each migration
is idempotent (``IF NOT EXISTS``, checks before renames) and runs inside one
transaction with the version bump, so a crash leaves the old version or the new
one. :func:`migrate` runs on every open of the catalog (``catalog.ensure``) and
from ``vibra migrate``; the tests build a catalog of every earlier version and
migrate it to the current one.

The lake's own move to Delta Lake is :func:`vibra.storage.tables.convert_lake`.
"""

from __future__ import annotations

from typing import Any, Callable

# The tables of version 1, exactly as that version created them.
V1_DDL = [
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    "CREATE TABLE IF NOT EXISTS recordings (recording_id VARCHAR, equipment_id VARCHAR, source_path VARCHAR, "
    "size_bytes BIGINT, mtime TIMESTAMPTZ, status VARCHAR, error VARCHAR, n_samples BIGINT, channels VARCHAR[], "
    "sample_rate_hz DOUBLE, recorded_at TIMESTAMPTZ, ingested_at TIMESTAMPTZ, n_windows BIGINT, warnings VARCHAR[], "
    "vibra_version VARCHAR, rpm DOUBLE, duplicate_of VARCHAR, updated_at TIMESTAMPTZ, "
    "PRIMARY KEY (source_path, recording_id))",
    "CREATE TABLE IF NOT EXISTS runs (run_id VARCHAR PRIMARY KEY, command VARCHAR, started_at TIMESTAMPTZ, "
    "ended_at TIMESTAMPTZ, status VARCHAR, counts JSON, settings JSON, vibra_version VARCHAR)",
]

SEED_DEFECTS = (
    ("normal", "healthy running, no defect"),
    ("imbalance", "mass imbalance: high 1× running speed, radial"),
    ("misalignment", "shaft misalignment: high 2× (and 1×) running speed, axial"),
    ("looseness", "mechanical looseness: many running-speed harmonics, sub-harmonics"),
    ("bearing_outer_race", "outer-race defect: envelope spectrum at BPFO"),
    ("bearing_inner_race", "inner-race defect: envelope spectrum at BPFI, modulated by 1×"),
    ("bearing_ball", "rolling-element defect: envelope spectrum at BSF (2×BSF)"),
    ("bearing_cage", "cage defect: envelope spectrum at FTF"),
    ("gear", "gear defect: gear-mesh frequency and sidebands"),
    ("electrical", "electrical fault: 2× line frequency, rotor bar sidebands"),
    ("sensor_fault", "not the machine: flat line, clipping, loose or failed sensor"),
)


def _columns(con: Any, table: str) -> set[str]:
    return {r[0] for r in con.execute(f"SELECT column_name FROM information_schema.columns WHERE table_name = '{table}'")
            .fetchall()}


def _v2(con: Any) -> None:
    """Per-channel sample counts in the ledger; the defect catalog, labels and the windows of cluster labels."""
    con.execute("ALTER TABLE recordings ADD COLUMN IF NOT EXISTS channel_stats VARCHAR")
    con.execute("CREATE TABLE IF NOT EXISTS defect_types (name VARCHAR PRIMARY KEY, description VARCHAR, "
                "source VARCHAR, created_by VARCHAR, created_at TIMESTAMPTZ)")
    con.execute("CREATE TABLE IF NOT EXISTS labels (label_id VARCHAR PRIMARY KEY, kind VARCHAR, defect VARCHAR, "
                "equipment_id VARCHAR, recording_id VARCHAR, start_at TIMESTAMPTZ, end_at TIMESTAMPTZ, "
                "clustering_version VARCHAR, cluster_id BIGINT, n_windows BIGINT, source VARCHAR, created_by VARCHAR, "
                "created_at TIMESTAMPTZ, note VARCHAR)")
    con.execute("CREATE TABLE IF NOT EXISTS label_windows (label_id VARCHAR, equipment_id VARCHAR, "
                "recording_id VARCHAR, channel VARCHAR, window_index BIGINT)")
    con.executemany("INSERT INTO defect_types VALUES (?, ?, 'seed', 'vibra', now()) ON CONFLICT DO NOTHING",
                    [list(d) for d in SEED_DEFECTS])


def _v3(con: Any) -> None:
    """The run history names its end ``finished_at`` and keeps the arguments and the error."""
    cols = _columns(con, "runs")
    if "ended_at" in cols and "finished_at" not in cols:
        con.execute("ALTER TABLE runs RENAME COLUMN ended_at TO finished_at")
    con.execute("ALTER TABLE runs ADD COLUMN IF NOT EXISTS arguments VARCHAR")
    con.execute("ALTER TABLE runs ADD COLUMN IF NOT EXISTS error VARCHAR")


def _v4(con: Any) -> None:
    """Failed files keep the hash of the settings that concern them and whether they are retried every run."""
    con.execute("ALTER TABLE recordings ADD COLUMN IF NOT EXISTS settings_hash VARCHAR")
    con.execute("ALTER TABLE recordings ADD COLUMN IF NOT EXISTS error_kind VARCHAR")


def _v5(con: Any) -> None:
    """A run keeps the process and host that run it, so a later run can close one killed before it could."""
    con.execute("ALTER TABLE runs ADD COLUMN IF NOT EXISTS pid BIGINT")
    con.execute("ALTER TABLE runs ADD COLUMN IF NOT EXISTS host VARCHAR")


def _v6(con: Any) -> None:
    """The settings each ledger row's ``settings_hash`` stands for, so a change can be named (vibra.ingest.staleness);
    the alarm list's states."""
    con.execute("CREATE TABLE IF NOT EXISTS settings_seen (settings_hash VARCHAR PRIMARY KEY, payload VARCHAR, "
                "first_seen TIMESTAMPTZ)")
    # the alarm list's states (vibra.anomaly.alarm_list): new / acknowledged / cleared, who and when
    con.execute("CREATE TABLE IF NOT EXISTS alarms (alarm_id VARCHAR PRIMARY KEY, equipment_id VARCHAR, channel VARCHAR, "
                "level VARCHAR, started_at TIMESTAMPTZ, last_at TIMESTAMPTZ, peak_score DOUBLE, state VARCHAR, "
                "acked_by VARCHAR, acked_at TIMESTAMPTZ, cleared_at TIMESTAMPTZ, updated_at TIMESTAMPTZ)")


MIGRATIONS: list[tuple[int, Callable[[Any], None]]] = [(2, _v2), (3, _v3), (4, _v4), (5, _v5), (6, _v6)]
CURRENT = MIGRATIONS[-1][0]


def version_of(con: Any) -> int:
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except Exception:  # noqa: BLE001 - no meta table: a fresh file
        return 0
    return int(row[0]) if row else 0


def migrate(con: Any) -> tuple[int, int]:
    """Bring the catalog on ``con`` to :data:`CURRENT`; returns (from, to). A fresh file gets version 1 first."""
    start = version_of(con)
    if start > CURRENT:
        from vibra.errors import ConfigError

        raise ConfigError(f"catalog schema version {start} is newer than this vibra understands ({CURRENT}); "
                          "upgrade vibra")
    if start == 0:
        for ddl in V1_DDL:
            con.execute(ddl)
        con.execute("INSERT INTO meta VALUES ('schema_version', '1') ON CONFLICT DO UPDATE SET value = '1'")
        start_now = 1
    else:
        start_now = start
    for version, step in MIGRATIONS:
        if version <= start_now:
            continue
        con.execute("BEGIN")
        try:
            step(con)
            con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(version)])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return start, CURRENT
