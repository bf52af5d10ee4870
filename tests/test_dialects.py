"""CSV dialects (issue 19 item 3): the delimiter and the decimal comma are sniffed, a machine's
``csv = { delimiter = ";", decimal = "," }`` overrides the guess, and an ambiguous file fails alone
with one line naming the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from vibra.errors import ConfigError, InputError
from vibra.readers import open_recording
from vibra.readers.csv import sniff
from vibra.settings import Equipment, load_settings
from vibra.storage import catalog
from vibra.workspace import init_workspace

from vibra_pipelines import ingest

RATE = 10_000.0


def _signal(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / RATE
    return np.column_stack([np.sin(2 * np.pi * 157 * t) + 0.3 * rng.standard_normal(n),
                            0.5 * np.cos(2 * np.pi * 49 * t) + 0.2 * rng.standard_normal(n)])


def _write(path: Path, data: np.ndarray, sep: str = ",", decimal: str = ".", header: bool = True) -> Path:
    """The same samples written in a given dialect, times in seconds from the start."""
    lines = [sep.join(["time", "x", "y"])] if header else []
    for i, row in enumerate(data):
        fields = [f"{i / RATE:.6f}"] + [f"{v:.9f}" for v in row]
        lines.append(sep.join(f.replace(".", decimal) for f in fields))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _workspace(tmp_path: Path, extra: str = ""):
    ws, _ = init_workspace(tmp_path / "ws")
    ws.config_path.write_text(ws.config_path.read_text() + "\n[equipment.us]\nunits = \"g\"\n"
                              "[equipment.eu]\nunits = \"g\"\n" + extra)
    return ws


def _features(ws, equipment_id: str) -> pl.DataFrame:
    files = sorted(ws.table("features").rglob(f"*{equipment_id}*/*.parquet"))
    assert files, f"no features for {equipment_id}"
    df = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
    return df.sort([c for c in ("channel", "window_start", "window_index") if c in df.columns])


def test_european_export_ingests_like_the_comma_file(tmp_path):
    """Semicolons, decimal commas, a header and a time column give the same indicators as commas."""
    ws = _workspace(tmp_path)
    data = _signal(40_000, 1)
    src = tmp_path / "export"
    _write(src / "us" / "run_2026-01-05T13-20-00.csv", data)
    _write(src / "eu" / "run_2026-01-05T13-20-00.csv", data, sep=";", decimal=",")
    result = ingest.run(ws, load_settings(ws.config_path, {}), src)
    assert (result.new, result.failed) == (2, 0), result.failures
    us, eu = _features(ws, "us"), _features(ws, "eu")
    assert us.height == eu.height > 0
    assert "rms" in us.columns
    np.testing.assert_allclose(eu["rms"].to_numpy(), us["rms"].to_numpy(), rtol=0, atol=1e-9)
    rates = catalog.query(ws.catalog_path, "SELECT DISTINCT sample_rate_hz FROM recordings")
    assert rates == [(RATE,)]


@pytest.mark.parametrize("sep", ["\t", "|", ";"])
def test_tab_pipe_and_semicolon_files_are_sniffed(tmp_path, sep):
    data = _signal(2_000, 2)
    path = _write(tmp_path / "m.csv", data, sep=sep)
    rec = open_recording(path, Equipment("m"))
    assert rec.channels == ["x", "y"]
    assert rec.sample_rate_hz == pytest.approx(RATE)
    np.testing.assert_allclose(np.concatenate(list(rec.chunks)), data, atol=1e-9)


def test_headerless_decimal_comma_file(tmp_path):
    """A first row of decimal-comma numbers is data, not a header."""
    data = _signal(1_000, 3)
    path = _write(tmp_path / "m.csv", data, sep=";", decimal=",", header=False)
    rec = open_recording(path, Equipment("m", sample_rate_hz=RATE, channels=("-", "x", "y")))
    assert rec.channels == ["x", "y"]
    np.testing.assert_allclose(np.concatenate(list(rec.chunks)), data, atol=1e-9)


def test_comma_files_still_read_as_before(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("a\n1.5\n2.5\n")  # one column: no delimiter to find
    assert sniff(path, path.read_text(), Equipment("m")) == (",", ".")
    path.write_text("time,a,b\n0.0,1.5,2\n0.1,2.5,3\n")
    assert sniff(path, path.read_text(), Equipment("m")) == (",", ".")


AMBIGUOUS = "id;name,unit\nA;pump,mm\nB;fan,mm\n"  # splits evenly on both ; and ,


def test_ambiguous_file_fails_alone_with_the_fix(tmp_path):
    ws = _workspace(tmp_path)
    src = tmp_path / "export"
    good = _write(src / "us" / "run_2026-01-05T13-20-00.csv", _signal(20_000, 4))
    bad = src / "us" / "odd.csv"
    bad.write_text(AMBIGUOUS)
    result = ingest.run(ws, load_settings(ws.config_path, {}), src)
    assert (result.new, result.failed) == (1, 1), result.failures
    (reason,) = result.failures.values()
    assert "\n" not in reason
    assert "odd.csv" in reason and "cannot tell the delimiter" in reason
    assert 'csv = { delimiter = ";", decimal = "," }' in reason and "[equipment.us]" in reason
    assert "polars" not in reason.lower() and "hint" not in reason.lower()
    assert good.name not in reason
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("t;x;y\n0,1;0.5;1,5\n0,2;0.6;1,6\n")
    with pytest.raises(InputError, match="cannot tell the decimal mark"):
        open_recording(mixed, Equipment("m"))


def test_override_reads_the_ambiguous_file(tmp_path):
    ws = _workspace(tmp_path, '[equipment.odd]\nsample_rate_hz = 1000\ncsv = { delimiter = ";", decimal = "," }\n')
    settings = load_settings(ws.config_path, {})
    path = tmp_path / "odd.csv"
    path.write_text("x;y,z\n" + "".join(f"{i},5;{i},25\n" for i in range(50)))  # y,z is one column name
    rec = open_recording(path, settings.equipment_for("odd"))
    assert rec.channels == ["x", "y,z"]
    got = np.concatenate(list(rec.chunks))
    np.testing.assert_allclose(got[:3], [[0.5, 0.25], [1.5, 1.25], [2.5, 2.25]])
    # decimal alone: the delimiter is still sniffed
    eq = Equipment("m", sample_rate_hz=1000.0, csv=type(settings.equipment_for("odd").csv)(None, ","))
    path.write_text("a|b\n1,5|2,5\n3,5|4,5\n")
    assert sniff(path, path.read_text(), eq) == ("|", ",")


@pytest.mark.parametrize("value, message", [
    ('{ delimiter = ",", decimal = "," }', "decimal comma cannot go with a comma delimiter"),
    ('{ decimal = ";" }', "csv.decimal"),
    ('{ delimiter = ";;" }', "csv.delimiter"),
    ('{ sep = ";" }', "keys delimiter and/or decimal"),
    ('";"', "keys delimiter and/or decimal"),
])
def test_settings_validation(tmp_path, value, message):
    ws, _ = init_workspace(tmp_path / "ws")
    ws.config_path.write_text(ws.config_path.read_text() + f"\n[equipment.m]\ncsv = {value}\n")
    with pytest.raises(ConfigError, match=message):
        load_settings(ws.config_path, {})
