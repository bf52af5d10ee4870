"""One CLI grammar (issue 28): `--equipment` chooses the machine of `query recent` too, with `--since`;
`--since` after `--until` is one error line, exit 1."""

from __future__ import annotations

import json
import math

import pytest

from conftest import run_vibra

RATE = 10_000


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return _plant(tmp_path_factory.mktemp("grammar"))


def _plant(root) -> str:
    """A workspace with one pump's three hourly recordings ingested; returns its home."""
    run_vibra("init", str(root / "plant"), check=True)
    folder = root / "export" / "pump-01"
    folder.mkdir(parents=True)
    for hour in range(3):
        lines = ["time,x"] + [f"{i / RATE:.4f},{(1 + hour) * 0.1 * math.sin(2 * math.pi * 25 * i / RATE):.5f}"
                              for i in range(RATE)]
        (folder / f"2026-01-05T{10 + hour:02d}-00-00.csv").write_text("\n".join(lines) + "\n")
    run_vibra("ingest", str(root / "export"), "--home", str(root / "plant"), check=True)
    return str(root / "plant")


def test_query_recent_takes_equipment_and_since(home):
    by_option = json.loads(run_vibra("query", "recent", "--equipment", "pump-01", "--json", "--home", home,
                                     check=True).stdout)
    by_argument = json.loads(run_vibra("query", "recent", "pump-01", "--json", "--home", home, check=True).stdout)
    assert by_option == by_argument and len(by_option["points"]) == 3
    recent = json.loads(run_vibra("query", "recent", "--equipment", "pump-01", "--since", "2026-01-05T11:00",
                                  "--json", "--home", home, check=True).stdout)
    assert [r["hour"][:13] for r in recent["points"]] == ["2026-01-05T12", "2026-01-05T11"]
    none = run_vibra("query", "recent", "--home", home)
    assert none.returncode == 1 and "choose one machine" in none.stderr


def test_since_after_until_is_one_error_line(home):
    proc = run_vibra("train", "--since", "2026-12-08", "--until", "2026-12-01", "--home", home)
    assert proc.returncode == 1
    assert "--since 2026-12-08 (2026-12-08T00:00:00Z) is not before --until 2026-12-01" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_synth_writes_to_out_and_takes_no_bare_word(tmp_path):
    """`vibra synth export` read like a subcommand `export`: the folder is `--out FOLDER`, as `vibra report --out`."""
    proc = run_vibra("synth", "--out", str(tmp_path / "export"), "--equipment", "1", "--days", "0.05",
                     "--no-sensor-faults", cwd=tmp_path, check=True)
    assert (tmp_path / "export" / "truth.csv").exists(), proc.stdout
    bare = run_vibra("synth", "export", cwd=tmp_path)
    assert bare.returncode == 2 and "--out" in bare.stderr, bare.stderr


def test_baseline_set_chooses_where_train_starts(home):
    """`vibra baseline set` (issue 28): the first healthy recording of the current life by default, a file the
    user names with --recording; `vibra train` counts the baseline from it."""
    default = json.loads(run_vibra("baseline", "set", "pump-01", "--json", "--home", home, check=True).stdout)
    assert default["chosen"] == "default" and default["source_path"].endswith("2026-01-05T10-00-00.csv")
    run_vibra("label", "failure", "pump-01", "--at", "2026-01-05T10:30:00Z", "--home", home, check=True)
    life = json.loads(run_vibra("baseline", "set", "pump-01", "--json", "--home", home, check=True).stdout)
    assert life["source_path"].endswith("2026-01-05T11-00-00.csv")  # the current life starts after the failure
    given = json.loads(run_vibra("baseline", "set", "pump-01", "--recording", "2026-01-05T12-00-00.csv", "--by", "ana",
                                 "--json", "--home", home, check=True).stdout)
    assert (given["chosen"], given["start"], given["set_by"]) == ("given", "2026-01-05T12:00:00Z", "ana")
    trained = run_vibra("train", "--model", "baseline", "--json", "--home", home,
                        env={"VIBRA_ANOMALY_BASELINE_MIN_WINDOWS": "2"})
    chosen = json.loads(trained.stdout)["baselines"]["pump-01"]
    assert chosen["from_chosen_recording"] and chosen["start"] >= "2026-01-05T12:00", chosen
    status = json.loads(run_vibra("status", "--json", "--home", home, check=True).stdout)
    assert [e["baseline_from"] for e in status["equipment"]] == ["2026-01-05T12-00-00.csv"]
    assert "2026-01-05T12-00-00.csv" in run_vibra("status", "--home", home, check=True).stdout
    bad = run_vibra("baseline", "set", "pump-01", "--recording", "nope.csv", "--home", home)
    assert bad.returncode == 1 and "'nope.csv'" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_the_chosen_baseline_is_the_machine_pages_reference(tmp_path):
    """The machine page says where the baseline starts, and its spectrum's reference (dashed) is that recording;
    unchosen, the first of the current life — not the machine's first, which belongs to an earlier life."""
    home = _plant(tmp_path)

    def page() -> str:
        run_vibra("report", "--out", str(tmp_path / "site"), "--home", home, check=True)
        return (tmp_path / "site" / "machines" / "pump-01.html").read_text()

    assert "first recording (01-05 10:00)" in page()  # one life: its first recording
    run_vibra("label", "failure", "pump-01", "--at", "2026-01-05T10:30:00Z", "--kind", "replacement", "--home", home,
              check=True)
    html = page()
    assert "first of this life (01-05 11:00)" in html and "first recording (01-05" not in html
    assert "choose one with <code>vibra baseline set</code>" in html
    run_vibra("baseline", "set", "pump-01", "--recording", "2026-01-05T10-00-00.csv", "--home", home, check=True)
    html = page()  # the user's choice wins, even before the replacement
    assert '<span id="baseline">2026-01-05T10-00-00.csv</span>' in html
    assert "chosen baseline (01-05 10:00)" in html and "first of this life" not in html
