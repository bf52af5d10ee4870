"""The shell as data engineers use it: `vibra sql`, --version, -h."""

from __future__ import annotations

import csv
import io
import json

import duckdb
import pytest

from conftest import run_vibra


@pytest.fixture(scope="module")
def plant(tmp_path_factory):
    ws = tmp_path_factory.mktemp("shell") / "plant"
    run_vibra("init", str(ws), check=True)
    run_vibra("synth", "--out", "export", "--equipment", "2", "--days", "0.25", "--seed", "4", "--no-sensor-faults",
              cwd=ws, check=True)
    run_vibra("ingest", "export", cwd=ws, check=True)
    return ws


def test_sql_counts_match_a_plain_duckdb_read(plant):
    out = run_vibra("sql", "SELECT equipment_id, count(*) AS windows FROM features GROUP BY 1 ORDER BY 1", "--json",
                    cwd=plant, check=True)
    payload = json.loads(out.stdout)
    assert payload["schema_version"] == 1 and payload["command"] == "sql"
    assert {"features", "hourly", "recordings", "runs"} <= set(payload["views"])
    expected = duckdb.connect().execute(
        f"SELECT equipment_id, count(*) FROM read_parquet('{plant}/data/lake/features/*/*/*.parquet', "
        "hive_partitioning = true) GROUP BY 1 ORDER BY 1").fetchall()
    assert [(r["equipment_id"], r["windows"]) for r in payload["rows"]] == expected
    assert len(expected) == 2 and all(n > 0 for _, n in expected)


def test_sql_ledger_is_read_only_and_csv_output(plant):
    out = run_vibra("sql", "SELECT status, count(*) AS n FROM recordings GROUP BY 1", "--csv", cwd=plant, check=True)
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert rows and rows[0]["status"] == "completed" and int(rows[0]["n"]) > 0
    for statement in ("DELETE FROM recordings", "DELETE FROM catalog.recordings", "DROP TABLE catalog.runs"):
        proc = run_vibra("sql", statement, cwd=plant)
        assert proc.returncode == 1 and proc.stderr.startswith("error: sql:"), statement
        assert "Traceback" not in proc.stderr
    again = json.loads(run_vibra("sql", "SELECT count(*) AS n FROM recordings", "--json", cwd=plant, check=True).stdout)
    assert again["rows"][0]["n"] == sum(int(r["n"]) for r in rows)


def test_sql_error_names_the_views(plant):
    proc = run_vibra("sql", "SELECT * FROM nope", cwd=plant)
    assert proc.returncode == 1
    assert "nope" in proc.stderr and "features" in proc.stderr and proc.stderr.count("\n") == 1


def test_sql_interactive_prompt(plant):
    import subprocess

    from conftest import vibra_exe

    proc = subprocess.run([vibra_exe(), "sql"], input="SELECT 40 + 2 AS answer;\n.tables\n.quit\n", cwd=plant,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert "42" in proc.stdout and "features" in proc.stdout


def test_version_and_short_help():
    from vibra import __version__

    assert run_vibra("--version", check=True).stdout.strip() == f"vibra {__version__}"
    assert run_vibra("-V", check=True).stdout.strip() == f"vibra {__version__}"
    short = run_vibra("status", "-h", check=True).stdout
    assert short == run_vibra("status", "--help", check=True).stdout and "Example: vibra" in short
    assert "--install-completion" in run_vibra("--help", check=True).stdout


# Every command that takes a machine id refuses an unknown one (exit 1) and names the closest.
ID_COMMANDS = [
    ["status", "--equipment", "{bad}"],
    ["query", "recent", "{bad}"],
    ["features", "rebuild", "--equipment", "{bad}"],
    ["train", "--equipment", "{bad}"],
    ["detect", "--equipment", "{bad}"],
    ["anomalies", "--equipment", "{bad}"],
    ["threshold", "set", "{bad}", "--quantile", "0.99"],
    ["forecast", "--equipment", "{bad}"],
    ["forecast", "show", "{bad}"],
    ["defects", "assignments", "--equipment", "{bad}"],
    ["readiness", "--equipment", "{bad}", "--json"],
    ["report", "--equipment", "{bad}"],
    ["diagnose", "--equipment", "{bad}"],
    ["rul", "--equipment", "{bad}"],
]


@pytest.mark.parametrize("cmd", ID_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_unknown_equipment_is_an_error_naming_the_closest(plant, cmd):
    known = json.loads(run_vibra("status", "--json", cwd=plant, check=True).stdout)["equipment"][0]["equipment_id"]
    bad = known.replace("-0", "-")  # pump-01 -> pump-1, the typo the issue met
    assert bad != known
    proc = run_vibra(*[a.format(bad=bad) for a in cmd], cwd=plant)
    assert proc.returncode == 1, proc.stdout
    assert f"unknown equipment '{bad}'" in proc.stderr and known in proc.stderr
    assert "Traceback" not in proc.stderr


def test_equipment_accepts_comma_lists_and_repeats(plant):
    ids = [e["equipment_id"] for e in json.loads(run_vibra("status", "--json", cwd=plant, check=True).stdout)["equipment"]]
    assert len(ids) == 2
    comma = json.loads(run_vibra("status", "--equipment", ",".join(ids), "--json", cwd=plant, check=True).stdout)
    repeat = json.loads(run_vibra("status", "--equipment", ids[0], "--equipment", ids[1], "--json", cwd=plant,
                                  check=True).stdout)
    one = json.loads(run_vibra("status", "--equipment", ids[0], "--json", cwd=plant, check=True).stdout)
    assert [e["equipment_id"] for e in comma["equipment"]] == ids == [e["equipment_id"] for e in repeat["equipment"]]
    assert comma["features_total"] == repeat["features_total"] > one["features_total"] > 0


def test_readiness_gates_by_default_and_never_passes_on_nothing(plant, tmp_path):
    # a quarter of a day of data is red (days_of_data < 14): the default --fail-on red exits 3
    gate = run_vibra("readiness", "--json", cwd=plant)
    assert gate.returncode == 3 and json.loads(gate.stdout)["status"] == "red"
    assert run_vibra("readiness", "--fail-on", "never", cwd=plant).returncode == 0
    run_vibra("init", str(tmp_path / "empty"), check=True)
    empty = run_vibra("readiness", "--fail-on", "never", cwd=tmp_path / "empty")
    assert empty.returncode == 3 and "no machine" in empty.stderr  # nothing to show yet: data not ready


def test_fix_in_an_error_survives_the_table(tmp_path):
    """Rich markup once ate "[equipment.press-7]" out of the failed-files table."""
    ws = tmp_path / "ws"
    run_vibra("init", str(ws), check=True)
    (ws / "export" / "press-7").mkdir(parents=True)
    (ws / "export" / "press-7" / "a.csv").write_text("x\n" + "\n".join(str(i % 7) for i in range(5000)) + "\n")
    proc = run_vibra("ingest", "export", cwd=ws)
    assert proc.returncode == 1
    assert "[equipment.press-7]" in proc.stdout, proc.stdout


def test_durations_wherever_a_time_is():
    from datetime import datetime, timezone

    from vibra.durations import parse_duration, parse_time
    from vibra.errors import InputError

    now = datetime(2026, 12, 2, 12, tzinfo=timezone.utc)
    assert parse_time("24h", now=now) == datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
    assert parse_time("7d", now=now) == datetime(2026, 11, 25, 12, tzinfo=timezone.utc)
    assert parse_time("2026-11-28T14:00", now=now) == datetime(2026, 11, 28, 14, tzinfo=timezone.utc)
    assert parse_time("2026-11-28T15:00+01:00", now=now) == datetime(2026, 11, 28, 14, tzinfo=timezone.utc)
    assert parse_duration("2w") == 14 * 86400 and parse_duration("10min") == 600
    for bad in ("yesterday", "nanh", "-3h", "infd"):
        with pytest.raises(InputError):
            parse_time(bad, now=now)


def test_since_takes_a_duration_and_an_error_is_one_line(plant):
    ok = run_vibra("anomalies", "--since", "24h", "--json", cwd=plant)
    assert ok.returncode in (0, 3), ok.stderr  # no models yet is "not ready", never a usage error
    bad = run_vibra("anomalies", "--since", "yesterday", cwd=plant)
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "24h" in bad.stderr
    assert "run failed" not in bad.stderr


def test_files_lists_failed_files_and_warnings(tmp_path):
    ws = tmp_path / "ws"
    run_vibra("init", str(ws), check=True)
    run_vibra("synth", "--out", "export", "--equipment", "3", "--days", "1", "--seed", "9", cwd=ws, check=True)
    run_vibra("ingest", "export", cwd=ws)  # the synth's truncated .csv.gz fails; spikes/NaN files get warnings
    everything = json.loads(run_vibra("files", "--json", cwd=ws, check=True).stdout)
    failed = json.loads(run_vibra("files", "--failed", "--json", cwd=ws, check=True).stdout)
    warned = json.loads(run_vibra("files", "--warnings", "--json", cwd=ws, check=True).stdout)
    assert everything["schema_version"] == 1 and everything["command"] == "files"
    assert len(failed["files"]) == 1 and failed["files"][0]["status"] == "failed"
    assert failed["files"][0]["path"].endswith(".csv.gz") and "gzip" in failed["files"][0]["reason"]
    assert warned["files"] and all(f["warnings"] for f in warned["files"])
    assert len(everything["files"]) > len(warned["files"]) + len(failed["files"])
    ledger = json.loads(run_vibra("sql", "SELECT count(DISTINCT source_path) AS n FROM recordings", "--json",
                                  cwd=ws, check=True).stdout)["rows"][0]["n"]
    assert len(everything["files"]) == ledger
    human = run_vibra("files", "--failed", cwd=ws, check=True).stdout
    assert "failed" in human and ".csv.gz" in human


def test_json_contract_envelope_and_errors(plant):
    import re

    stamp = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
    for args, key in ((["status"], "equipment"), (["query", "recent", "pump-02"], "points"), (["runs"], "runs"),
                      (["files"], "files")):
        payload = json.loads(run_vibra(*args, "--json", cwd=plant, check=True).stdout)
        assert payload["schema_version"] == 1 and payload["command"] == " ".join(args[:2] if args[0] == "query" else args[:1])
        assert isinstance(payload[key], list) and payload[key]

        def times(value):
            if isinstance(value, dict):
                for k, v in value.items():
                    yield from ([v] if k in ("hour", "last_recorded_at", "started_at", "finished_at", "updated_at")
                                and isinstance(v, str) else times(v))
            elif isinstance(value, list):
                for v in value:
                    yield from times(v)
        found = list(times(payload))
        assert found and all(stamp.match(t) for t in found), found[:3]
    err = run_vibra("query", "recent", "pump-2", "--json", cwd=plant)
    assert err.returncode == 1
    body = json.loads(err.stdout)
    assert body["command"] == "query recent" and body["error"]["exit_code"] == 1
    assert "pump-02" in body["error"]["message"] and body["error"]["type"] == "InputError"


def test_help_metavars_are_readable():
    """Usage lines once showed `{out}` and `<list[str]>`; the reference is generated from every `--help`
    (and kept current by tests/test_docs.py), so one read checks every command."""
    import re
    from pathlib import Path

    cli = (Path(__file__).resolve().parents[1] / "docs" / "reference" / "cli.md").read_text()
    assert "Usage: vibra ingest [OPTIONS] {SOURCE}" in cli
    assert not re.findall(r"\{[a-z_]+\}", cli)
    assert "<list[" not in cli
