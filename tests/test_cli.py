"""The command line as a user meets it: help, exit codes, JSON, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

import duckdb
import pytest
from typer.testing import CliRunner

from vibra_cli.main import app
from conftest import run_vibra

COMMANDS = [["init"], ["synth"], ["ingest"], ["status"], ["diagnose"], ["query", "recent"], ["demo"]]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c))
def test_every_command_has_help_with_an_example(cmd):
    result = CliRunner().invoke(app, [*cmd, "--help"])
    assert result.exit_code == 0
    assert "Example: vibra" in result.output


def test_help_does_not_import_heavy_libraries():
    code = ("import sys; from vibra_cli.main import app; "
            "heavy = [m for m in ('numpy', 'polars', 'duckdb', 'numba', 'pyarrow', 'scipy') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_an_unchanged_rerun_loads_neither_numpy_nor_numba(tmp_path):
    """The rerun over files already ingested (what a cron job runs every few minutes) only reads the
    ledger and stats the files: numpy (~0.1 s, ~10 MB) and numba (~120 MB) stay unloaded."""
    from vibra.workspace import init_workspace
    from vibra_pipelines import synth

    ws, _ = init_workspace(tmp_path / "ws")
    synth.run(tmp_path / "export", n_equipment=1, days=2 / 24, seed=3, start=datetime(2026, 6, 1, tzinfo=timezone.utc),
              sensor_faults=False, workspace=ws)
    run_vibra("ingest", str(tmp_path / "export"), "--home", str(ws.root), check=True)
    code = ("import sys; sys.modules['numpy'] = sys.modules['numba'] = None; "  # importing either now fails
            "from vibra_cli.main import main; "
            f"sys.argv = ['vibra', 'ingest', {str(tmp_path / 'export')!r}, '--home', {str(ws.root)!r}, '--json']; main()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["new"] == 0 and result["skipped"] > 0


def test_usage_error_exits_2():
    assert run_vibra("ingest").returncode == 2
    assert run_vibra("nonsense-command").returncode == 2


def test_no_workspace_is_one_clear_line(tmp_path):
    proc = run_vibra("status", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0
    assert "no vibra.toml" in proc.stderr and "vibra init" in proc.stderr and "Traceback" not in proc.stderr


def test_bad_setting_is_one_clear_line(tmp_path):
    run_vibra("init", str(tmp_path), check=True)
    (tmp_path / "vibra.toml").write_text("[features]\nframe_length = 3\n")
    proc = run_vibra("status", cwd=tmp_path)
    assert proc.returncode == 1
    assert "frame_length = 3: out of range; must be an integer in 64..1048576" in proc.stderr
    proc = run_vibra("status", cwd=tmp_path, env={"VIBRA_INGEST_MAX_CONCURRENT_FILES": "lots"})
    assert proc.returncode == 1 and "VIBRA_INGEST_MAX_CONCURRENT_FILES" in proc.stderr


def test_new_user_walkthrough(tmp_path):
    """The issue's check: init, synth, ingest, status --json, rerun, broken files, DuckDB over the lake."""
    ws = tmp_path / "plant"
    assert run_vibra("init", str(ws), check=True).returncode == 0
    run_vibra("synth", "--out", "export", "--equipment", "3", "--days", "1", "--seed", "9", cwd=ws, check=True)
    first = run_vibra("ingest", "export", "--json", cwd=ws)
    summary = json.loads(first.stdout)
    # the synthetic truncated .csv.gz is refused (exit 1); everything else lands
    assert first.returncode == 1 and summary["failed"] == 1 and summary["new"] == 71
    assert "truncated or corrupt gzip" in next(iter(summary["failures"].values()))
    status = json.loads(run_vibra("status", "--json", cwd=ws, check=True).stdout)
    assert list(status) == ["schema_version", "command", "total_files", "pending", "processing", "completed", "failed", "duplicates",
                            "features_total", "last_recorded_at", "equipment", "stale", "stale_files", "stale_command"]
    assert status["stale"] == [] and status["stale_files"] == 0 and status["stale_command"] is None
    assert list(status["equipment"][0]) == ["equipment_id", "completed", "failed", "windows", "last_recorded_at",
                                            "baseline_from"]
    assert status["completed"] == 71 and status["failed"] == 1 and status["total_files"] == 72
    second = json.loads(run_vibra("ingest", "export", "--json", cwd=ws).stdout)
    assert second["new"] == 0 and second["skipped"] == 72

    broken = tmp_path / "broken"
    (broken / "pump-02").mkdir(parents=True)
    (broken / "pump-02" / "empty.csv").write_text("")
    (broken / "pump-02" / "words.csv").write_text("x\n1\nhello\n")
    good = sorted((ws / "export" / "pump-02").glob("*.csv"))[0]
    # dated in the past: a file dated after now + [ingest] max_clock_skew_s is refused
    (broken / "pump-02" / "fresh_2025-01-01T00-00-00.csv").write_bytes(good.read_bytes() + b"0.1,0.1\n")
    third = run_vibra("ingest", str(broken), "--json", cwd=ws)
    res = json.loads(third.stdout)
    assert third.returncode == 1 and res["failed"] == 2 and res["new"] == 1
    assert all(str(broken) in reason for reason in res["failures"].values())

    status = json.loads(run_vibra("status", "--json", cwd=ws, check=True).stdout)
    n = duckdb.connect().execute(
        f"SELECT count(*) FROM read_parquet('{ws}/data/lake/features/*/*/*.parquet', hive_partitioning = true)"
    ).fetchone()[0]
    assert n == status["features_total"] > 0

    recent = json.loads(run_vibra("query", "recent", "pump-02", "--limit", "3", "--json", cwd=ws, check=True).stdout)["points"]
    assert len(recent) == 3 and recent[0]["hour"] >= recent[-1]["hour"]
    assert {"rms_mean", "rms_max", "rms_p95", "n_windows", "channel"} <= set(recent[0])
    one = json.loads(run_vibra("query", "recent", "pump-02", "--channel", "y", "--indicator", "kurtosis",
                               "--json", cwd=ws, check=True).stdout)["points"]
    assert {r["channel"] for r in one} == {"y"} and "kurtosis_p95" in one[0]
    bad = run_vibra("query", "recent", "pump-02", "--indicator", "nope", cwd=ws)
    assert bad.returncode == 1 and "choose one of" in bad.stderr
    capped = run_vibra("query", "recent", "pump-02", "--limit", "1000", "--json", cwd=ws,
                       env={"VIBRA_QUERY_MAX_POINTS": "5"}, check=True)
    assert len(json.loads(capped.stdout)["points"]) == 5


def test_human_output_is_plain_when_not_a_tty(tmp_path):
    run_vibra("init", str(tmp_path), check=True)
    out = run_vibra("status", cwd=tmp_path, check=True).stdout
    assert "\x1b[" not in out and "files" in out


def test_cluster_and_forecast_options_are_in_the_run_record(tmp_path):
    """A command's options reach the pipeline through the settings, so the run record holds the values
    that ran (an option beats the environment, which beats vibra.toml)."""
    from vibra.storage import catalog

    run_vibra("init", str(tmp_path), check=True)
    (tmp_path / "vibra.toml").write_text("[cluster]\nsample = 400\n[forecast]\nfreq_s = 600\n")
    home = ["--home", str(tmp_path)]
    proc = run_vibra("cluster", "--umap-components", "0", "--min-cluster-size", "7", "--sample", "500", *home,
                     env={"VIBRA_CLUSTER_SAMPLE": "300"})
    assert proc.returncode == 3, proc.stderr  # an empty lake: not ready, and the run is still recorded
    run_vibra("forecast", "--horizon", "7d", "--freq", "2h", "--min-points", "9", *home, check=True)

    def recorded(command: str) -> dict:
        rows = catalog.query(tmp_path / "data" / "catalog.duckdb",
                             "SELECT settings FROM runs WHERE command = ? ORDER BY started_at DESC", [command])
        assert rows, command
        return json.loads(rows[0][0])

    cluster, forecast = recorded("cluster")["cluster"], recorded("forecast")["forecast"]
    assert (cluster["min_cluster_size"], cluster["umap_components"], cluster["sample"]) == (7, 0, 500)
    assert (forecast["horizon_h"], forecast["freq_s"], forecast["min_points"]) == (168.0, 7200.0, 9)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_logged_error_shows_its_traceback_only_when_verbose(fmt, capsys):
    """An environment failure is one line on stderr; ``-v`` adds the traceback of its cause."""
    import logging

    from vibra_cli.output import setup_logging

    for verbose in (False, True):
        setup_logging(fmt, "warning", verbose)
        try:
            raise OSError(28, "No space left on device")
        except OSError as exc:
            logging.getLogger("vibra").error("ingest stopped", exc_info=exc)
        err = capsys.readouterr().err
        assert "ingest stopped" in err and ("Traceback" in err) == verbose, err
        assert len(err.strip().splitlines()) == 1 or verbose
    setup_logging("text", "warning")


# every listing command on a workspace where nothing was ingested: "nothing to show yet" is exit 3 (data not
# ready) with one line naming the step to run, the same for every command (docs/reference/cli.md, exit codes)
EMPTY = [["diagnose"], ["anomalies"], ["alarms"], ["clusters"], ["files"], ["rul"], ["readiness"],
         ["query", "recent", "--equipment", "pump-01"], ["forecast", "show", "pump-01"], ["defects", "assignments"],
         ["label", "list"], ["snapshot", "list"]]


def test_nothing_to_show_exits_3_on_every_listing_command(tmp_path):
    home = tmp_path / "ws"
    run_vibra("init", str(home), check=True)
    with open(home / "vibra.toml", "a") as f:  # a configured machine that has no data yet
        f.write('\n[equipment.pump-01]\nrpm = 1480\n')
    for cmd in EMPTY:
        proc = run_vibra(*cmd, "--home", str(home), "--json")
        assert proc.returncode == 3, (cmd, proc.returncode, proc.stderr)
        assert proc.stderr.startswith("error: ") and "vibra " in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert json.loads(proc.stdout)["error"]["exit_code"] == 3, (cmd, proc.stdout)
    # what is never empty answers 0: the workspace's status, the run history, the seeded defect catalog
    for cmd in (["status"], ["runs"], ["defects", "list"]):
        assert run_vibra(*cmd, "--home", str(home)).returncode == 0, cmd
