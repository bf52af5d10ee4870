"""Readers check what a header declares before reading (issue 32, B8 and the weak readers): a file that
declares more samples than [ingest] max_span_s allows or than its bytes can hold fails at once naming the
file and the value; impossible time increments fail naming the value; a TDMS cut short names each channel it
leaves out. Files are written by each format's own library (h5py, npTDMS, pyuff, soundfile), then damaged."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from vibra.errors import InputError
from vibra.readers import open_recording
from vibra.settings import Equipment, load_settings
from vibra.storage import catalog
from vibra.workspace import init_workspace
from vibra_pipelines import ingest

from test_formats import T0, signal, write_tdms, write_uff


def _huge_mat73(path: Path, length: int = 10**12) -> None:
    """A MATLAB v7.3 file of ~2.5 KB declaring a 1 × ``length`` vector: nothing is stored, every read of it
    returns fill values (the file that once kept an ingest busy for over 10 minutes)."""
    import h5py

    with h5py.File(str(path), "w", userblock_size=512) as fh:
        ds = fh.create_dataset("accel", shape=(1, length), dtype="f8", chunks=(1, 4096), compression="gzip")
        ds.attrs["MATLAB_class"] = np.bytes_("double")
        fh.create_dataset("fs", data=np.array([[20_000.0]]))


def test_a_mat73_declaring_10e12_samples_fails_the_ingest_at_once_naming_its_length_and_max_span(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    src = tmp_path / "export" / "pump"
    src.mkdir(parents=True)
    _huge_mat73(src / "huge.mat")
    assert (src / "huge.mat").stat().st_size < 4096
    result = ingest.run(ws, load_settings(ws.config_path, {}), tmp_path / "export")
    assert result.failed == 1 and result.new == 0
    (status, error), = catalog.query(ws.catalog_path, "SELECT status, error FROM recordings")
    assert status == "failed"
    assert "huge.mat" in error and "1000000000000 samples" in error and "max_span_s" in error, error


def test_a_mat73_declaring_more_than_its_bytes_hold_fails_before_the_first_read(tmp_path):
    # within max_span_s (the features rebuild reads without the ingest's check): the file's size refuses it
    path = tmp_path / "hollow.mat"
    _huge_mat73(path, length=50_000_000)
    rec = open_recording(path, Equipment("m"))
    assert rec.declared_samples == 50_000_000
    with pytest.raises(InputError, match=r"hollow.mat: declares 50,000,000 samples × 1 channel\(s\) .* over 1000× its size"):
        next(rec.chunks)


def test_a_flac_header_declaring_more_frames_than_it_holds_fails_before_reading(tmp_path):
    import soundfile as sf

    path = tmp_path / "long.flac"
    sf.write(str(path), signal(1000, 1, 1), 8000)
    data = bytearray(path.read_bytes())
    # STREAMINFO: 20 bits of rate, 3 of channels - 1, 5 of bits - 1, then 36 bits of total samples
    packed = int.from_bytes(data[18:26], "big")
    data[18:26] = ((packed & ~((1 << 36) - 1)) | ((1 << 36) - 1)).to_bytes(8, "big")
    path.write_bytes(bytes(data))
    rec = open_recording(path, Equipment("m"))
    assert rec.declared_samples == (1 << 36) - 1
    with pytest.raises(InputError, match=r"long.flac: declares 68,719,476,735 samples"):
        next(rec.chunks)


def test_a_tdms_time_step_of_1e_300_s_is_refused_naming_the_value(tmp_path):
    from nptdms import ChannelObject, TdmsWriter

    path = tmp_path / "fast.tdms"
    with TdmsWriter(str(path)) as writer:
        writer.write_segment([ChannelObject("g", "acc", np.arange(5000.0), properties={"wf_increment": 1e-300})])
    with pytest.raises(InputError, match=r"fast.tdms: channel 'acc' wf_increment = 1e-300 s means 1e\+300 Hz"):
        open_recording(path, Equipment("m"))


def test_a_tdms_cut_short_names_each_channel_it_leaves_out(tmp_path):
    from nptdms import ChannelObject, TdmsWriter

    whole = tmp_path / "whole.tdms"
    write_tdms(whole, signal(10_000, 2, 1), 25_600.0, T0, segments=4)
    cut = tmp_path / "cut.tdms"
    cut.write_bytes(whole.read_bytes()[:-20_000])  # the last segment loses ch1's block
    rec = open_recording(cut, Equipment("m"))
    assert rec.channels == ["ch0"]
    assert rec.warnings == ["channel 'ch1' holds 7500 samples, the others 10000 (a file cut short?); left out"]
    assert np.concatenate(list(rec.chunks)).shape == (10_000, 1)

    empty = tmp_path / "empty.tdms"
    with TdmsWriter(str(empty)) as writer:
        writer.write_segment([ChannelObject("g", "acc", np.arange(5000.0), properties={"wf_increment": 1e-3}),
                              ChannelObject("g", "temp", np.array([], dtype=np.float64),
                                            properties={"wf_increment": 1e-3})])
    rec = open_recording(empty, Equipment("m"))
    assert rec.channels == ["acc"] and any("'temp' holds 0 samples" in w for w in rec.warnings), rec.warnings


def test_a_uff_with_a_zero_time_step_is_refused_naming_the_value(tmp_path):
    path = tmp_path / "flat.uff"
    write_uff(path, signal(1024, 1, 3), 8192.0)
    text = path.read_text()
    assert text.count("1.22070e-04") == 1  # the abscissa increment (1/8192 s) as pyuff wrote it
    path.write_text(text.replace("1.22070e-04", "0.00000e+00"))
    with pytest.raises(InputError, match=r"flat.uff: record 'acc 0' abscissa_inc = 0.0 s is not a positive time step"):
        open_recording(path, Equipment("m"))


def test_wav_frames_are_bounded_by_the_file(tmp_path):
    """A WAV header claiming 4 GiB of data: libsndfile counts the frames the file holds, and so does vibra."""
    import soundfile as sf

    path = tmp_path / "big.wav"
    sf.write(str(path), signal(1000, 1, 2), 8000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    at = data.find(b"data")
    data[at + 4:at + 8] = struct.pack("<I", 0xFFFFFFF0)
    path.write_bytes(bytes(data))
    rec = open_recording(path, Equipment("m"))
    assert rec.declared_samples == 1000 and np.concatenate(list(rec.chunks)).shape == (1000, 1)
