"""Rolling-element bearing kinematics: the defect frequencies of a geometry, in orders of shaft speed.

Vocabulary (one for the library): a fault **family** is named for where the defect is — ``outer_race``,
``inner_race``, ``ball`` (and ``cage``); a **defect frequency** keeps its textbook acronym — BPFO (ball pass,
outer race), BPFI (ball pass, inner race), BSF (ball spin), FTF (fundamental train = cage). The stored
``env_bpfo`` … ``env_ftf`` columns are levels *at a frequency*; the ``evidence_outer_race`` … columns are
evidence *for a family*.

With k = d/D·cos α (d ball, D pitch diameter, α contact angle), n rolling elements, f_r the shaft speed:
FTF = f_r/2·(1−k), BPFO = n·f_r/2·(1−k), BPFI = n·f_r/2·(1+k), BSF = D/(2d)·f_r·(1−k²)
(Randall & Antoni, MSSP 25, 2011, §2). A ball defect strikes both races once per spin, so its
envelope line is at 2×BSF, with odd multiples of BSF when the two races respond differently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vibra.equipment import Bearing

FAMILIES = ("outer_race", "inner_race", "ball")
FAMILY_TEXT = {"outer_race": "outer race", "inner_race": "inner race", "ball": "ball", "cage": "cage"}
# the defect frequency each family's evidence is read at (ball: at 2×BSF, see the module docstring)
FAMILY_FREQUENCY = {"outer_race": "bpfo", "inner_race": "bpfi", "ball": "bsf", "cage": "ftf"}


@dataclass(frozen=True)
class Geometry:
    """Defect frequencies of one bearing as orders of shaft speed (multiples of f_r)."""

    bpfo: float
    bpfi: float
    bsf: float
    ftf: float

    @classmethod
    def of(cls, b: Bearing) -> "Geometry":
        return cls(**bearing_orders(b))

    def hz(self, rpm: float) -> dict[str, float]:
        """The defect frequencies in Hz at shaft speed ``rpm``."""
        fr = rpm / 60.0
        return {"bpfo": self.bpfo * fr, "bpfi": self.bpfi * fr, "bsf": self.bsf * fr, "ftf": self.ftf * fr}


def bearing_orders(b: Bearing) -> dict[str, float]:
    """Defect frequencies as multiples of shaft speed (orders): ``bpfo``, ``bpfi``, ``bsf``, ``ftf``."""
    k = b.ball_diameter_mm / b.pitch_diameter_mm * math.cos(math.radians(b.contact_angle_deg))
    return {
        "ftf": 0.5 * (1 - k),
        "bpfo": b.n_elements / 2 * (1 - k),
        "bpfi": b.n_elements / 2 * (1 + k),
        "bsf": b.pitch_diameter_mm / (2 * b.ball_diameter_mm) * (1 - k * k),
    }


def fault_frequencies_hz(b: Bearing, rpm: float) -> dict[str, float]:
    """Defect frequencies in Hz at shaft speed ``rpm``; ``bsf`` is the ball's spin frequency
    (a ball defect strikes both races, so its envelope line is at 2×BSF)."""
    fr = rpm / 60.0
    return {name: order * fr for name, order in bearing_orders(b).items()}
