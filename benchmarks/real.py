"""The real bearing data beside the checkout (``../shared/data/real``, or ``VIBRA_REAL_DATA``) and the machine
sections that read each set; the tests use the same ones (``tests/conftest.py``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
if not REAL.exists():  # CI and developers keep shared/ beside the checkout; allow an override
    REAL = Path(os.environ.get("VIBRA_REAL_DATA", REAL))

# The CWRU drive-end set as one machine: 12 kHz, 6205 geometry, rpm from each file, the normal file at 48 kHz.
CWRU_PHYSICS_TOML = """
[equipment.cwru-de]
sample_rate_hz = 12000
units = "g"
bearing = { n_elements = 9, ball_diameter_mm = 7.94, pitch_diameter_mm = 39.04, contact_angle_deg = 0 }
iso_group = 2
iso_support = "rigid"

[[equipment.cwru-de.files]]
glob = "Normal_*"
sample_rate_hz = 48000
"""
# The same with 1024-sample hops and the normal file decimated to 12 kHz (anomaly and cluster tests).
CWRU_TOML = "[features]\nhop_length = 1024\n" + CWRU_PHYSICS_TOML + "decimate = 4\n"
# FEMTO PRONOSTIA Bearing1_1: headerless 2,560-sample snapshots every 10 s, times from the file names.
FEMTO_TOML = """
[features]
frame_length = 2560
hop_length = 2560

[equipment.bearing1_1]
sample_rate_hz = 25600
units = "g"
rpm = 1800
channels = ["-", "-", "-", "-", "horizontal", "vertical"]
bearing = { n_elements = 13, ball_diameter_mm = 3.5, pitch_diameter_mm = 25.6, contact_angle_deg = 0 }
start_rule = { regex = "acc_(\\\\d+)", origin = 2010-12-01T09:00:00Z, step_s = 10 }
"""


# One PHM 2012 learning bearing as it is shipped (headerless acc_*.csv.gz, 10 s apart, 6 columns of which the
# last two are the horizontal and vertical accelerometers); ``origin`` is the first snapshot's ISO time (UTC).
FEMTO_MACHINE = """
[equipment.{eid}]
sample_rate_hz = 25600
units = "g"
rpm = {rpm}
channels = ["-", "-", "-", "-", "horizontal", "vertical"]
bearing = {{ n_elements = 13, ball_diameter_mm = 3.5, pitch_diameter_mm = 25.6, contact_angle_deg = 0 }}
start_rule = {{ regex = "acc_(\\\\d+)", origin = {origin}, step_s = 10 }}
"""


def stage(paths, machine_dir: Path, *, hour_apart: bool = False) -> Path:
    """Copy real-data files into an export's machine folder; returns the export folder.

    ``hour_apart``: the files carry no time, so give them modification times one hour apart in the
    order given (ingest then dates them by mtime, in that order).
    """
    machine_dir.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(paths):
        shutil.copy(path, machine_dir / Path(path).name)
        if hour_apart:
            os.utime(machine_dir / Path(path).name, (1_767_225_600 + 3600 * i,) * 2)
    return machine_dir.parent
