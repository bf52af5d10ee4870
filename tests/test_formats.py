"""Acquisition formats (issue 22): IMS raw text, TDMS, UFF 58, MATLAB v7.3 and any audio file.

Real IMS files where they exist; otherwise files written by each format's own library
(npTDMS, pyuff, h5py, soundfile), each read back sample for sample. A bad file of each kind
fails with a clear reason, and one ingest of a folder mixing every kind lands them all.
"""

from __future__ import annotations

import gzip
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from vibra.errors import InputError
from vibra.storage.hashing import sha256_file
from vibra.readers import format_of, open_recording
from vibra.settings import Equipment, load_settings
from vibra.storage import catalog
from vibra.workspace import init_workspace

from vibra_pipelines import ingest

IMS_TOML = """[equipment.ims]
sample_rate_hz = 20000
units = "g"
channels = ["b1x", "b1y", "b2x", "b2y", "b3x", "b3y", "b4x", "b4y"]
format = { kind = "text", delimiter = "\\t", header = false }
file_pattern = "????.??.??.??.??.??"
"""
T0 = datetime(2026, 1, 5, 13, 20, 0, tzinfo=timezone.utc)


def _all(rec) -> np.ndarray:
    return np.concatenate(list(rec.chunks))


def _equipment(tmp_path, toml: str, eid: str) -> Equipment:
    path = tmp_path / "eq.toml"
    path.write_text(toml)
    return load_settings(path, {}).equipment[eid]


# --- writers ---------------------------------------------------------------------------------------

def write_tdms(path: Path, data: np.ndarray, rate: float, start: datetime | None, segments: int = 3,
               units: str = "g") -> None:
    from nptdms import ChannelObject, TdmsWriter

    props = {"wf_increment": 1.0 / rate, "unit_string": units}
    if start is not None:
        props["wf_start_time"] = np.datetime64(start.replace(tzinfo=None), "us")
    with TdmsWriter(str(path)) as writer:
        for part in np.array_split(np.arange(data.shape[0]), segments):
            writer.write_segment([ChannelObject("accel", f"ch{j}", data[part, j], properties=props)
                                  for j in range(data.shape[1])])


def write_uff(path: Path, data: np.ndarray, rate: float, units: str = "g") -> None:
    import pyuff

    def record(j):
        n = data.shape[0]
        return pyuff.prepare_58(
            binary=0, id1=f"acc {j}", id2="", id3="", id4="", id5="", func_type=1, ver_num=0, load_case_id=0,
            rsp_ent_name="pt", rsp_node=j + 1, rsp_dir=3, ref_ent_name="pt", ref_node=1, ref_dir=3, ord_data_type=4,
            num_pts=n, abscissa_spacing=1, abscissa_min=0.0, abscissa_inc=1.0 / rate, z_axis_value=0.0,
            abscissa_spec_data_type=17, abscissa_len_unit_exp=0, abscissa_force_unit_exp=0, abscissa_temp_unit_exp=0,
            abscissa_axis_units_lab="s", ordinate_spec_data_type=12, ordinate_len_unit_exp=1,
            ordinate_force_unit_exp=0, ordinate_temp_unit_exp=0, ordinate_axis_units_lab=units,
            orddenom_spec_data_type=0, orddenom_len_unit_exp=0, orddenom_force_unit_exp=0, orddenom_temp_unit_exp=0,
            orddenom_axis_units_lab="", z_axis_spec_data_type=0, z_axis_len_unit_exp=0, z_axis_force_unit_exp=0,
            z_axis_temp_unit_exp=0, z_axis_axis_units_lab="", data=data[:, j], x=np.arange(n) / rate)

    pyuff.UFF(str(path)).write_sets([record(j) for j in range(data.shape[1])], mode="overwrite")


def write_mat73(path: Path, variables: dict) -> None:
    """A MATLAB v7.3 file as MATLAB lays it out: a 512-byte MATLAB header, then HDF5 whose datasets
    hold N×1 vectors as (1, N) and scalars as (1, 1), chunked."""
    import h5py

    with h5py.File(str(path), "w", userblock_size=512) as fh:
        for name, value in variables.items():
            arr = np.atleast_2d(np.asarray(value, dtype=np.float64))
            ds = fh.create_dataset(name, data=arr, chunks=(1, min(arr.shape[1], 4096)) if arr.size > 1 else None)
            ds.attrs["MATLAB_class"] = np.bytes_("double")
    header = (b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  5 13:20:00 2026 HDF5 schema 1.00 ."
              .ljust(116) + b"\x00" * 8 + b"\x00\x02IM")
    with open(path, "r+b") as fh:
        fh.write(header)


def signal(n: int, channels: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.9, 0.9, size=(n, channels))


# --- IMS raw text ------------------------------------------------------------------------------------

def test_real_ims_raw_files_read_by_the_machine_format(tmp_path, real_data):
    eq = _equipment(tmp_path, IMS_TOML, "ims")
    files = sorted(p for p in (real_data / "ims_raw_test1").iterdir() if p.name != "SOURCE.md")
    assert len(files) == 10
    for path in files[:3]:
        assert format_of(path) is None and format_of(path, eq) == "csv"
        rec = open_recording(path, eq, chunk_rows=4096)
        assert rec.channels == list(eq.channels)
        data = _all(rec)
        np.testing.assert_array_equal(data, np.loadtxt(path))  # every sample, 20480 × 8
    assert format_of(real_data / "ims_raw_test1" / "SOURCE.md", eq) is None  # the pattern leaves it out


def test_the_ims_rig_as_documented_gets_a_verdict_per_bearing(tmp_path, real_data):
    """The IMS example of docs/howto/formats.md as a user copies it: four bearings in one file, two
    accelerometers each, named as measurement points — `vibra diagnose` gives each bearing its own verdict."""
    import json
    import re

    from conftest import run_vibra

    doc = (Path(__file__).resolve().parents[1] / "docs" / "howto" / "formats.md").read_text()
    block = re.search(r"```toml\n(\s*\[equipment\.ims-test1\].*?)```", doc, re.S).group(1)
    ws, _ = init_workspace(tmp_path / "ws")
    ws.config_path.write_text(ws.config_path.read_text() + "\n" + "\n".join(line.strip() for line in block.splitlines()))
    folder = tmp_path / "export" / "ims-test1"
    folder.mkdir(parents=True)
    for path in sorted(p for p in (real_data / "ims_raw_test1").iterdir() if p.name != "SOURCE.md")[:2]:
        shutil.copy(path, folder / path.name)
    run_vibra("ingest", str(tmp_path / "export"), "--home", str(ws.root), check=True)
    payload = json.loads(run_vibra("diagnose", "--json", "--home", str(ws.root), check=True).stdout)
    assert len(payload["recordings"]) == 2
    for r in payload["recordings"]:
        assert [p["point"] for p in r["points"]] == ["bearing1", "bearing2", "bearing3", "bearing4"]
        for i, p in enumerate(r["points"], start=1):  # each read from one of its own two sensors
            assert p["channel"] in (f"b{i}x", f"b{i}y") and p["verdict"] != "not_diagnosable", p


def test_ims_file_without_format_is_unknown_with_the_fix(real_data):
    path = real_data / "ims_raw_test1" / "2003.10.22.12.06.24"
    with pytest.raises(InputError, match=r"unknown file type .*set \[equipment.ims\] format"):
        open_recording(path, Equipment("ims"))


def test_file_pattern_as_regex(tmp_path, real_data):
    eq = _equipment(tmp_path, IMS_TOML.replace('"????.??.??.??.??.??"', r'"^\\d{4}(\\.\\d{2}){5}$"'), "ims")
    assert eq.format_for("2003.10.22.12.06.24") is not None and eq.format_for("2003.10.22.12.06.24.bak") is None


def test_bad_text_file_names_the_row(tmp_path):
    eq = _equipment(tmp_path, IMS_TOML, "ims")
    path = tmp_path / "2003.10.22.12.06.24"
    path.write_text("\n".join("\t".join(["0.1"] * 8) for _ in range(50)) + "\n" + "\t".join(["x"] * 8) + "\n")
    with pytest.raises(InputError, match=r"column 'b1x' has text at row 51 \('x'\)"):
        _all(open_recording(path, eq))


# --- TDMS --------------------------------------------------------------------------------------------

def test_tdms_written_by_nptdms(tmp_path):
    data = signal(10_000, 3, 1)
    path = tmp_path / "run.tdms"
    write_tdms(path, data, 25_600.0, T0, segments=4)
    rec = open_recording(path, Equipment("press"), chunk_rows=3000)
    assert rec.channels == ["ch0", "ch1", "ch2"]
    assert rec.sample_rate_hz == 25_600.0 and rec.start == T0
    assert rec.units == {"ch0": "g", "ch1": "g", "ch2": "g"}
    chunks = list(rec.chunks)
    assert max(c.shape[0] for c in chunks) == 3000
    np.testing.assert_array_equal(np.concatenate(chunks), data)


def test_tdms_groups_become_prefixed_channels(tmp_path):
    from nptdms import ChannelObject, TdmsWriter

    path = tmp_path / "two.tdms"
    x = np.arange(500.0)
    with TdmsWriter(str(path)) as writer:
        writer.write_segment([ChannelObject("left", "acc", x, properties={"wf_increment": 1e-3}),
                              ChannelObject("right", "acc", -x, properties={"wf_increment": 1e-3}),
                              ChannelObject("right", "temp", x[:10], properties={"wf_increment": 1.0})])
    rec = open_recording(path, Equipment("m"))
    assert rec.channels == ["left/acc", "right/acc"] and rec.sample_rate_hz == 1000.0
    assert any("right/temp" in w for w in rec.warnings)
    np.testing.assert_array_equal(_all(rec), np.column_stack([x, -x]))


def test_bad_tdms_fails_with_reason(tmp_path):
    path = tmp_path / "bad.tdms"
    path.write_bytes(b"not a tdms file at all" * 10)
    with pytest.raises(InputError, match=r"bad.tdms: not a readable TDMS file .*Segment does not start with"):
        open_recording(path, Equipment("m"))


# --- UFF ---------------------------------------------------------------------------------------------

def test_uff_58_written_by_pyuff(tmp_path):
    data = signal(4096, 2, 2)
    path = tmp_path / "hammer.uff"
    write_uff(path, data, 8192.0, units="g")
    rec = open_recording(path, Equipment("fan"), chunk_rows=1000)
    assert rec.channels == ["acc 0", "acc 1"] and rec.sample_rate_hz == 8192.0
    assert rec.units == {"acc 0": "g", "acc 1": "g"}
    # pyuff writes ASCII dataset 58 with 12 significant digits (%20.11e): equal to that precision
    np.testing.assert_allclose(_all(rec), data, rtol=1e-11, atol=0)


def test_bad_uff_fails_with_reason(tmp_path):
    path = tmp_path / "bad.uff"
    path.write_text("    -1\n    58\nnot a header\n    -1\n")
    with pytest.raises(InputError, match=r"bad.uff: not a readable UFF file"):
        open_recording(path, Equipment("m"))


# --- MATLAB v7.3 -------------------------------------------------------------------------------------

def test_mat73_cwru_naming_read_in_slices(tmp_path):
    data = signal(50_000, 2, 3)
    path = tmp_path / "IR007_1.mat"
    write_mat73(path, {"X106_DE_time": data[:, 0], "X106_FE_time": data[:, 1], "X106RPM": 1772.0})
    rec = open_recording(path, Equipment("cwru", sample_rate_hz=12_000.0), chunk_rows=7000)
    assert rec.channels == ["DE", "FE"] and rec.rpm == 1772.0
    chunks = list(rec.chunks)
    assert len(chunks) == 8 and max(c.shape[0] for c in chunks) == 7000
    np.testing.assert_array_equal(np.concatenate(chunks), data)


def test_mat73_generic_variables(tmp_path):
    x = np.arange(3000.0)
    path = tmp_path / "g.mat"
    write_mat73(path, {"accel": x, "fs": 2000.0, "rpm": 1500.0})
    rec = open_recording(path, Equipment("m"))
    assert rec.channels == ["accel"] and rec.sample_rate_hz == 2000.0 and rec.rpm == 1500.0
    np.testing.assert_array_equal(_all(rec)[:, 0], x)


def test_bad_mat73_fails_with_reason(tmp_path):
    good = tmp_path / "g.mat"
    write_mat73(good, {"accel": np.arange(3000.0)})
    path = tmp_path / "cut.mat"
    path.write_bytes(good.read_bytes()[:1200])  # header and superblock, the rest cut off
    with pytest.raises(InputError, match=r"cut.mat: not a readable MATLAB v7.3 \(HDF5\) file"):
        _all(open_recording(path, Equipment("m")))


# --- audio -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("subtype", ["PCM_24", "FLOAT", "PCM_16"])
def test_audio_written_by_soundfile(tmp_path, subtype):
    import soundfile as sf

    x = signal(9000, 4, 4)
    # written from integers (PCM) or float32 so that the file holds exactly these samples
    if subtype == "PCM_24":
        data, expected = (x * 2 ** 23).astype(np.int32) * 256, None
        expected = data / 2.0 ** 31
    elif subtype == "PCM_16":
        data = (x * 2 ** 15).astype(np.int16)
        expected = data / 2.0 ** 15
    else:
        data = x.astype(np.float32)
        expected = data.astype(np.float64)
    path = tmp_path / f"rec_{subtype}.wav"
    sf.write(str(path), data, 48_000, subtype=subtype)
    assert sf.info(str(path)).subtype == subtype
    rec = open_recording(path, Equipment("m"), chunk_rows=2000)
    assert rec.channels == ["ch0", "ch1", "ch2", "ch3"] and rec.sample_rate_hz == 48_000
    np.testing.assert_array_equal(_all(rec), expected)


def test_audio_full_scale_and_flac(tmp_path):
    import soundfile as sf

    pcm = (signal(5000, 1, 5) * 2 ** 15).astype(np.int16)
    path = tmp_path / "rec.flac"
    sf.write(str(path), pcm, 20_000, subtype="PCM_16")
    rec = open_recording(path, Equipment("m", full_scale=50.0))
    np.testing.assert_array_equal(_all(rec)[:, 0], pcm[:, 0] / 2 ** 15 * 50.0)


def test_bad_audio_fails_with_reason(tmp_path):
    path = tmp_path / "bad.wav"
    path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    with pytest.raises(InputError, match=r"bad.wav: not a readable WAV file"):
        open_recording(path, Equipment("m"))


# --- one folder of every kind ------------------------------------------------------------------------

def test_ingest_a_folder_mixing_every_kind(tmp_path, real_data):
    """IMS raw, TDMS, UFF, v7.3 .mat, 24-bit WAV and a bad file of each kind in one run."""
    import soundfile as sf

    ws, _ = init_workspace(tmp_path / "ws")
    ws.config_path.write_text(ws.config_path.read_text() + "\n" + IMS_TOML + """
[equipment.press]
[equipment.fan]
[equipment.cwru]
sample_rate_hz = 12000
units = "g"
[equipment.mic]
full_scale = 10
units = "g"
[equipment.pump]
sample_rate_hz = 10000
""")
    src = tmp_path / "export"
    for eid in ("ims", "press", "fan", "cwru", "mic", "pump"):
        (src / eid).mkdir(parents=True)
    ims = sorted(p for p in (real_data / "ims_raw_test1").iterdir() if p.name != "SOURCE.md")[:2]
    for p in ims:
        shutil.copy(p, src / "ims" / p.name)
    (src / "ims" / "2003.10.22.13.00.00").write_text("0.1\t0.2\n")  # 2 columns, 8 channels configured
    write_tdms(src / "press" / "line3.tdms", signal(20_000, 2, 6), 10_240.0, T0)
    (src / "press" / "broken.tdms").write_bytes(b"garbage" * 50)
    write_uff(src / "fan" / "fan_2026-01-05T14-00-00.uff", signal(8192, 2, 7), 8192.0, units="m/s^2")
    (src / "fan" / "broken.uff").write_text("    -1\n    58\nnot a header\n    -1\n")
    write_mat73(src / "cwru" / "IR007_1.mat", {"X106_DE_time": signal(24_000, 1, 8)[:, 0], "X106RPM": 1772.0})
    (src / "cwru" / "broken.mat").write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00" * 200)
    sf.write(str(src / "mic" / "mic_2026-01-05T15-00-00.wav"), signal(16_384, 2, 9), 16_384, subtype="PCM_24")
    (src / "mic" / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    lines = "".join(f"{a:.5f},{b:.5f}\n" for a, b in signal(20_000, 2, 10))
    (src / "pump" / "pump_2026-01-05T16-00-00.csv").write_text("a,b\n" + lines)
    shutil.copy(src / "pump" / "pump_2026-01-05T16-00-00.csv", src / "pump" / "same_2026-01-05T16-00-00.csv")
    (src / "pump" / "pump_2026-01-05T17-00-00.csv.gz").write_bytes(gzip.compress(b"\xef\xbb\xbf" + lines.encode()))

    result = ingest.run(ws, load_settings(ws.config_path, {}), src)
    assert (result.new, result.duplicates, result.failed) == (8, 1, 5), result.failures
    # the recording id is the sha256 of the file's bytes whether hashed apart or in the reader's pass (CSV)
    ids = dict(catalog.query(ws.catalog_path, "SELECT source_path, recording_id FROM recordings"))
    assert len(ids) == 14 and all(rid == sha256_file(Path(p)) for p, rid in ids.items())
    rows = {Path(r[0]).name: r[1:] for r in catalog.query(
        ws.catalog_path, "SELECT source_path, status, sample_rate_hz, channels, recorded_at, channel_stats, error "
                         "FROM recordings")}
    ok = {k: v for k, v in rows.items() if v[0] == "completed"}
    assert ok["2003.10.22.12.06.24"][1:4] == (20_000.0, ["b1x", "b1y", "b2x", "b2y", "b3x", "b3y", "b4x", "b4y"],
                                              datetime(2003, 10, 22, 12, 6, 24, tzinfo=timezone.utc))
    assert ok["line3.tdms"][1:4] == (10_240.0, ["ch0", "ch1"], T0)
    assert '"units": "g"' in ok["line3.tdms"][4]
    assert ok["fan_2026-01-05T14-00-00.uff"][1:4] == (8192.0, ["acc 0", "acc 1"],
                                                      datetime(2026, 1, 5, 14, tzinfo=timezone.utc))
    assert '"units": "m/s^2"' in ok["fan_2026-01-05T14-00-00.uff"][4]
    assert ok["IR007_1.mat"][1:3] == (12_000.0, ["DE"])
    assert ok["pump_2026-01-05T17-00-00.csv.gz"][2] == ["ch0", "ch1"]
    assert ok["mic_2026-01-05T15-00-00.wav"][1:4] == (16_384.0, ["ch0", "ch1"],
                                                      datetime(2026, 1, 5, 15, tzinfo=timezone.utc))
    failed = {k: v[5] for k, v in rows.items() if v[0] == "failed"}
    assert set(failed) == {"2003.10.22.13.00.00", "broken.tdms", "broken.uff", "broken.mat", "broken.wav"}
    assert "headerless file has 2 columns" in failed["2003.10.22.13.00.00"]
    assert "not a readable TDMS file" in failed["broken.tdms"]
    assert "not a readable UFF file" in failed["broken.uff"]
    assert "not a readable MATLAB v5 file" in failed["broken.mat"]
    assert "not a readable WAV file" in failed["broken.wav"]
