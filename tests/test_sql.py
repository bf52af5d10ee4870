"""`vibra sql` is read-only by construction and reads the lake through the lake layer (issue 32, B6/B7):
each attack the adversarial pass made is a test here, run against a real workspace (real DuckDB catalog,
real Delta tables) and, for `[lake] uri`, a real S3-protocol server (moto)."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import duckdb
import pytest

from vibra.errors import InputError
from vibra.settings import load_settings
from vibra.workspace import find_workspace
from vibra_pipelines import sql

from conftest import run_vibra


@pytest.fixture(scope="module")
def plant(tmp_path_factory):
    ws = tmp_path_factory.mktemp("sql") / "plant"
    run_vibra("init", str(ws), check=True)
    run_vibra("synth", "--out", "export", "--equipment", "2", "--days", "0.25", "--seed", "4", "--no-sensor-faults",
              cwd=ws, check=True)
    run_vibra("ingest", "export", cwd=ws, check=True)
    return ws


def _run(ws, query: str, **overrides):
    settings = load_settings(ws / "vibra.toml", {}, {f"sql.{k}": v for k, v in overrides.items()})
    return sql.run(find_workspace(ws), settings, query)


def _ledger(ws) -> list[tuple]:
    with duckdb.connect(str(ws / "data" / "catalog.duckdb"), read_only=True) as con:
        return sorted(con.execute("SELECT source_path, status, updated_at FROM recordings").fetchall())


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_reads_work_and_count_what_the_lake_holds(plant):
    counts = _run(plant, "SELECT equipment_id, count(*) FROM features GROUP BY 1 ORDER BY 1").rows
    status = json.loads(run_vibra("status", "--json", cwd=plant, check=True).stdout)
    assert sum(n for _, n in counts) == status["features_total"] > 0 and len(counts) == 2
    assert {"features", "hourly", "recordings", "runs"} <= set(_run(plant, "SELECT 1").views)
    for ok in ("DESCRIBE features", "SHOW TABLES", "SUMMARIZE hourly", "EXPLAIN SELECT count(*) FROM features",
               "WITH w AS (SELECT * FROM features) SELECT count(*) FROM w", "FROM catalog.recordings LIMIT 1",
               "SELECT count(*) FROM features WHERE date = (SELECT min(date) FROM features);"):
        assert _run(plant, ok).columns, ok


@pytest.mark.parametrize("read", ["read_csv('{secret}')", "read_text('{secret}')", "glob('{dir}/*')",
                                  "read_parquet('{lake_file}')"])
def test_no_file_outside_the_views_is_read(plant, tmp_path, read):
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$hash:19000:0:99999:7:::\n")
    lake_file = next((plant / "data" / "lake" / "features").rglob("*.parquet"))
    with pytest.raises(InputError, match="disabled by configuration"):
        _run(plant, "SELECT * FROM " + read.format(secret=secret, dir=tmp_path, lake_file=lake_file))


def test_copy_writes_nowhere_not_even_over_a_lake_file(plant, tmp_path):
    lake_file = next((plant / "data" / "lake" / "features").rglob("*.parquet"))
    before = _digest(lake_file)
    for target in (tmp_path / "out.csv", lake_file):
        for statement in (f"COPY (SELECT 1 AS a) TO '{target}'",
                          f"COPY (SELECT 1 AS a) TO '{target}' (FORMAT parquet, USE_TMP_FILE false)",
                          f"EXPLAIN ANALYZE COPY (SELECT 1 AS a) TO '{target}'",
                          f"COPY features TO '{target}'"):
            with pytest.raises(InputError, match="only read|only of a SELECT"):
                _run(plant, statement)
    assert not (tmp_path / "out.csv").exists() and _digest(lake_file) == before


def test_the_catalog_cannot_be_detached_reattached_or_changed(plant):
    catalog = plant / "data" / "catalog.duckdb"
    before = _ledger(plant)
    for statement in ("DETACH catalog", f"ATTACH '{catalog}' AS rw", f"ATTACH '{catalog}' AS catalog",
                      "USE memory", "DELETE FROM recordings", "DELETE FROM catalog.recordings",
                      "DROP TABLE catalog.runs", "UPDATE runs SET status = 'ok'", "CREATE TABLE x AS SELECT 1",
                      "CHECKPOINT", "CALL pragma_version()", "PRAGMA show_tables"):
        with pytest.raises(InputError, match="not allowed"):
            _run(plant, statement)
    # several statements are refused whole, whatever the first one is
    for statements in ("DETACH catalog; ATTACH '{0}' AS catalog; DELETE FROM catalog.recordings",
                       "SELECT 1; DELETE FROM recordings", "SELECT 1; SELECT 2"):
        with pytest.raises(InputError, match="statements given; run one at a time"):
            _run(plant, statements.format(catalog))
    assert _ledger(plant) == before and before


def test_settings_and_extensions_stay_locked(plant):
    for statement in ("SET enable_external_access = true", "SET lock_configuration = false",
                      "RESET enable_external_access", "INSTALL httpfs", "LOAD httpfs", "FORCE INSTALL httpfs"):
        with pytest.raises(InputError, match="not allowed"):
            _run(plant, statement)
    # and a SELECT cannot reach them either
    with pytest.raises(InputError):
        _run(plant, "SELECT * FROM query('SET enable_external_access = true')")
    assert _run(plant, "SELECT current_setting('enable_external_access') AS v").rows == [(False,)]
    assert _run(plant, "SELECT current_setting('lock_configuration') AS v").rows == [(True,)]


def test_a_runaway_statement_is_stopped_by_the_timeout_or_the_memory_limit(plant):
    with pytest.raises(InputError, match=r"stopped after 1 s \(\[sql\] timeout_s\)"):
        _run(plant, "SELECT count(*) FROM range(100_000_000_000_000)", timeout_s=1)
    for hungry in ("SELECT count(DISTINCT range) FROM range(100_000_000_000_000)",
                   "SELECT list(range) FROM range(100_000_000_000_000)",
                   "SELECT * FROM range(100_000_000_000_000) ORDER BY random()"):  # no spilling to disk either
        with pytest.raises(InputError, match=r"more than 64 MB \(\[sql\] memory_limit_mb\)"):
            _run(plant, hungry, memory_limit_mb=64, timeout_s=600)
    with pytest.raises(InputError, match=r"answer passed .* rows .* \[sql\] memory_limit_mb"):
        _run(plant, "SELECT * FROM range(100_000_000_000_000)", memory_limit_mb=64, timeout_s=600)
    assert _run(plant, "SELECT current_setting('memory_limit') AS v", memory_limit_mb=64).rows[0][0].startswith("61")


def test_csv_and_json_print_every_row_and_a_cut_answer_says_so(plant):
    out = run_vibra("sql", "SELECT * FROM range(2500)", "--csv", cwd=plant, check=True)
    assert len(list(csv.reader(io.StringIO(out.stdout)))) == 2501 and out.stderr == ""
    full = json.loads(run_vibra("sql", "SELECT * FROM range(2500)", "--json", cwd=plant, check=True).stdout)
    assert len(full["rows"]) == 2500 and full["truncated"] is False
    cut = run_vibra("sql", "SELECT * FROM range(2500)", "--json", "--max-rows", "10", cwd=plant, check=True)
    body = json.loads(cut.stdout)
    assert len(body["rows"]) == 10 and body["truncated"] is True
    assert "cut at 10 row(s)" in cut.stderr
    exact = json.loads(run_vibra("sql", "SELECT * FROM range(10)", "--json", "--max-rows", "10", cwd=plant,
                                 check=True).stdout)
    assert len(exact["rows"]) == 10 and exact["truncated"] is False
    one_line = run_vibra("sql", "COPY (SELECT 1) TO 'x.csv'", cwd=plant)
    assert one_line.returncode == 1 and one_line.stderr.count("\n") == 1 and "Traceback" not in one_line.stderr


def test_a_missing_or_foreign_lake_file_is_named_not_a_traceback(plant, tmp_path):
    """B3/B4: a file the log names but which is gone, and a lake file overwritten by a valid Parquet file of
    another schema: one error naming the file and `vibra doctor --repair`."""
    import shutil

    import polars as pl

    ws = tmp_path / "copy"
    shutil.copytree(plant, ws)
    files = sorted((ws / "data" / "lake" / "features").rglob("*.parquet"))
    files[0].unlink()
    gone = run_vibra("sql", "SELECT count(*) FROM features", cwd=ws)
    assert gone.returncode == 1 and "Traceback" not in gone.stderr and gone.stderr.count("\n") == 1, gone.stderr
    assert files[0].name in gone.stderr and "doctor --repair" in gone.stderr
    shutil.copytree(plant / "data" / "lake" / "features", ws / "data" / "lake" / "features", dirs_exist_ok=True)
    pl.DataFrame({"rms": ["not a number"], "channel": [1]}).write_parquet(files[1])
    foreign = run_vibra("sql", "SELECT count(*) FROM features", cwd=ws)
    assert foreign.returncode == 1 and "Traceback" not in foreign.stderr, foreign.stderr[-2000:]
    assert files[1].name in foreign.stderr and "doctor --repair" in foreign.stderr


# -- [lake] uri: the same lake every command reads ---------------------------------------------------------

from test_s3 import _uri, s3  # noqa: E402,F401 - the moto server fixture, shared


def test_sql_reads_the_lake_at_the_uri_not_the_cache(s3, tmp_path):  # noqa: F811 - the fixture
    import shutil

    env = {**s3, "VIBRA_LAKE_URI": _uri()}
    ws = tmp_path / "ws"
    run_vibra("init", str(ws), check=True)
    run_vibra("synth", "--out", "export", "--equipment", "1", "--days", "0.1", "--seed", "5", "--no-sensor-faults", cwd=ws,
              check=True)
    run_vibra("ingest", "export", cwd=ws, env=env, check=True)
    total = json.loads(run_vibra("status", "--json", cwd=ws, env=env, check=True).stdout)["features_total"]
    count = "SELECT count(*) AS n FROM features"
    assert json.loads(run_vibra("sql", count, "--json", cwd=ws, env=env, check=True).stdout)["rows"] == [{"n": total}]
    # an emptied cache: the answer comes from the store; a stale extra file in the cache is no part of it
    shutil.rmtree(ws / "data" / "lake")
    again = run_vibra("sql", count, "--json", cwd=ws, env=env, check=True)
    assert json.loads(again.stdout)["rows"] == [{"n": total}] and total > 0
    cached = next((ws / "data" / "lake" / "features").rglob("*.parquet"))
    shutil.copy(cached, cached.with_name("part-stale0000000000.parquet"))
    assert json.loads(run_vibra("sql", count, "--json", cwd=ws, env=env, check=True).stdout)["rows"] == [{"n": total}]
    # a store that is not there is an error, never an answer from the cache
    missing = run_vibra("sql", count, "--json", cwd=ws, env={**s3, "VIBRA_LAKE_URI": "s3://no-such-bucket-vibra/p"})
    assert missing.returncode == 1 and "Traceback" not in missing.stderr, missing.stderr[-2000:]
    assert "no-such-bucket-vibra" in missing.stdout + missing.stderr
