"""One JSON contract (issue 19 item 5): the --json output of the main commands, run on a small
synthetic plant, validates against the JSON Schemas in docs/schemas (draft 2020-12)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from conftest import run_vibra

SCHEMAS = Path(__file__).resolve().parents[1] / "docs" / "schemas"
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
LOOKS_LIKE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Every schema's command run with --json on a 2-machine plant with one bad file: name -> payload."""
    ws = tmp_path_factory.mktemp("schemas") / "plant"
    run_vibra("init", str(ws), check=True)
    run_vibra("synth", "--out", "export", "--equipment", "2", "--days", "1.5", "--seed", "4", "--no-sensor-faults",
              cwd=ws, check=True)
    machine = sorted(p for p in (ws / "export").iterdir() if p.is_dir())[0]
    (machine / "broken_2026-01-01T00-00-00.csv").write_text("time,x\n0.0,1.0\n0.1,oops\n")
    commands = {
        "ingest": ["ingest", "export"],
        "status": ["status"],
        "files": ["files"],
        "sql": ["sql", "SELECT equipment_id, min(window_start) AS first, count(*) AS n FROM features GROUP BY 1"],
        "query_recent": ["query", "recent", machine.name],
        "detect": None,  # after train, below
        "anomalies": None,
        "runs": ["runs"],
        "readiness": ["readiness", "--fail-on", "never"],
        "doctor": ["doctor"],
        "forecast": ["forecast"],
        "rul": ["rul"],
        "diagnose": ["diagnose"],
        "error": ["status", "--equipment", "pump-2"],
    }
    out = {}
    for name, args in commands.items():
        if name == "detect":
            run_vibra("train", "--baseline-days", "0.5", cwd=ws, check=True)
            args = ["detect"]
        elif name == "anomalies":
            args = ["anomalies"]
        proc = run_vibra(*args, "--json", cwd=ws)
        assert proc.returncode == (1 if name in ("error", "ingest") else 0), (name, proc.stderr)
        out[name] = json.loads(proc.stdout)
    return out


def test_every_schema_is_valid_draft_2020_12():
    files = sorted(SCHEMAS.glob("*.schema.json"))
    assert len(files) >= 14
    for path in files:
        schema = json.loads(path.read_text())
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(schema)


def _strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def test_real_outputs_validate(outputs):
    assert {p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.schema.json")} == set(outputs)
    for name, payload in outputs.items():
        schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
        errors = sorted(Draft202012Validator(schema).iter_errors(payload), key=lambda e: list(e.path))
        assert not errors, f"{name}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:3])
        # every timestamp anywhere, named in the schema or not, is ISO-8601 UTC to the second
        bad = [s for s in _strings(payload) if LOOKS_LIKE_TIME.match(s) and not STAMP.match(s)]
        assert not bad, (name, bad[:3])


def test_outputs_carry_what_the_schemas_promise(outputs):
    """The lists are not empty where the plant has data, so the item schemas were exercised."""
    for name, key in [("status", "equipment"), ("files", "files"), ("sql", "rows"), ("query_recent", "points"),
                      ("runs", "runs"), ("readiness", "equipment"), ("readiness", "metrics"), ("forecast", "series"),
                      ("rul", "machines"), ("diagnose", "recordings"), ("detect", "equipment"), ("anomalies", "episodes")]:
        assert outputs[name][key], (name, key)
    assert {m["equipment_id"] for m in outputs["readiness"]["equipment"]} == \
        {m["equipment_id"] for m in outputs["status"]["equipment"]}
    assert sum(m["scored"] for m in outputs["detect"]["equipment"]) == outputs["detect"]["scored"] > 0
    assert outputs["ingest"]["failed"] == 1 and any(f["status"] == "failed" and f["reason"]
                                                    for f in outputs["files"]["files"])
    assert outputs["error"]["error"]["exit_code"] == 1 and "pump-02" in outputs["error"]["error"]["message"]


def test_a_schema_rejects_the_old_shapes():
    """Fails if a schema is so loose it would accept the shapes the contract replaced."""
    readiness = json.loads((SCHEMAS / "readiness.schema.json").read_text())
    old = {"schema_version": 1, "command": "readiness", "status": "red", "generated_at": "2026-01-01T00:00:00.123456+00:00",
           "counts": {"green": 0, "amber": 0, "red": 1}, "equipment": {"pump-02": "red"}, "metrics": [],
           "fail_on": "red", "failed": True}
    messages = " ".join(e.message for e in Draft202012Validator(readiness).iter_errors(old))
    assert "is not of type 'array'" in messages and "does not match" in messages


