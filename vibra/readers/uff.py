"""Universal File Format (UFF/UNV, modal and vibration analysers) through ``pyuff``.

Dataset 58 records of function type 1 (time response) are the channels: each
is named by its ``id1`` text, else ``node<rsp_node>:<rsp_dir>``; the abscissa
increment (seconds) gives the sample rate and ``ordinate_axis_units_lab`` the
units. Records of other types (spectra, FRFs) are skipped with a warning.
pyuff parses a file whole, so a UFF file is held in memory; analysers write
them record by record, seconds long, so that stays small.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from vibra.errors import InputError
from vibra.readers.base import Recording, rate_from_increment
from vibra.equipment import Equipment


def _chunks(matrix: np.ndarray, chunk_rows: int):
    for offset in range(0, matrix.shape[0], chunk_rows):
        yield matrix[offset:offset + chunk_rows]


def read_uff(path: Path, equipment: Equipment, chunk_rows: int, on_time_gap: str = "split") -> Recording:
    import pyuff

    try:
        uff = pyuff.UFF(str(path))
        types = list(uff.get_set_types())
        sets = [uff.read_sets(i) for i, t in enumerate(types) if int(t) == 58]
    except Exception as exc:  # pyuff raises bare Exception, ValueError, IndexError… for garbage
        raise InputError(f"{path}: not a readable UFF file ({type(exc).__name__}: {str(exc)[:120]}); "
                         "check the file's format and extension") from None
    if not sets:
        raise InputError(f"{path}: no dataset 58 (function at nodal DOF) records in the UFF file "
                         f"(dataset types found: {sorted({int(t) for t in types})}); export time histories as dataset 58")
    warnings = []
    time_sets = [s for s in sets if int(s.get("func_type", 0)) == 1]
    if len(time_sets) < len(sets):
        warnings.append(f"{len(sets) - len(time_sets)} dataset 58 record(s) that are not time responses "
                        "(function type 1) were skipped")
    if not time_sets:
        raise InputError(f"{path}: no time-response records (dataset 58 function type 1) in the UFF file; "
                         "vibra reads waveforms, not spectra or FRFs")
    records = []
    for s in time_sets:
        data = np.asarray(s["data"])
        if np.iscomplexobj(data):
            continue
        name = str(s.get("id1") or "").strip() or f"node{s.get('rsp_node')}:{s.get('rsp_dir')}"
        # an increment of 0 s (or 1e-300 s) is a broken record, not a missing time column
        rate_from_increment(path, s.get("abscissa_inc") or 0.0, f"record {name!r} abscissa_inc")
        records.append((name, data.astype(np.float64), float(s.get("abscissa_inc") or 0.0),
                        str(s.get("ordinate_axis_units_lab") or "").strip()))
    shape, _ = Counter((d.shape[0], inc) for _, d, inc, _ in records).most_common(1)[0]
    kept = [r for r in records if (r[1].shape[0], r[2]) == shape]
    if len(kept) < len(records):
        warnings.append(f"channels {[r[0] for r in records if r not in kept]} differ in length or abscissa "
                        "increment from the others and were left out")
    names = [r[0] for r in kept]
    if len(set(names)) != len(names):  # several records with one id1: tell them apart by position
        names = [f"{n}#{i}" for i, n in enumerate(names)]
    recording = Recording(channels=names, chunks=_chunks(np.column_stack([r[1] for r in kept]), chunk_rows),
                          warnings=warnings, declared_samples=shape[0])
    if shape[1] > 0:
        # ASCII dataset 58 writes the increment with 6 significant digits (1/8192 s as 1.22070E-04,
        # i.e. 8192.02 Hz): 5 significant digits of the rate are what it carries; binary keeps a double
        digits = 9 if int(time_sets[0].get("binary") or 0) else 5
        recording.sample_rate_hz = float(f"{1.0 / shape[1]:.{digits}g}")
    units = {n: r[3] for n, r in zip(names, kept) if r[3] and r[3].upper() != "NONE"}
    recording.units = units or None
    return recording
