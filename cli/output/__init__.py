"""How results reach people and scripts: :mod:`.json` (the ``--json`` contract on stdout), :mod:`.console`
(plain lines), :mod:`.progress` (bars and stage lines on stderr), :mod:`.tables` (each command's tables and
summaries), :mod:`.logs` (the ``vibra`` logger). A command uses them as ``output.<name>``."""

from vibra_cli.output.console import console, say, say_err
from vibra_cli.output.json import emit, emit_error, envelope, utc_second
from vibra_cli.output.logs import setup_logging
from vibra_cli.output.progress import bar, ingest_progress, stages
from vibra_cli.output.tables import (
    alarms_table, assignments_table, cluster_summary, clusters_table, demo_summary, detect_summary, diagnose_table, doctor_table,
    episodes_table, files_table, forecast_show, forecast_table, frame_records, frame_table, ingest_summary,
    readiness_table, rebuild_summary, rows_table, sql_result, status_table, synth_summary, train_summary,
)

__all__ = [
    "alarms_table", "assignments_table", "bar", "cluster_summary", "clusters_table", "console", "demo_summary", "detect_summary",
    "diagnose_table", "doctor_table", "emit", "emit_error", "envelope", "episodes_table", "files_table",
    "forecast_show", "forecast_table", "frame_records", "frame_table", "ingest_progress", "ingest_summary",
    "readiness_table", "rebuild_summary", "rows_table", "say", "say_err", "setup_logging", "sql_result", "stages",
    "status_table", "synth_summary", "train_summary", "utc_second",
]
