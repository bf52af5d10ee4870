"""The diagnose stage: a bearing-fault verdict per recording, from the evidence columns in the lake.

Ingest stores each window's fault-family evidence (``evidence_outer_race``, ``evidence_inner_race``,
``evidence_ball``; :mod:`vibra.diagnosis`). The verdict is computed from those stored columns on
demand — by ``vibra diagnose`` and by the report — so it is never out of step with the features and
needs no table of its own. A recording's verdict is that of its channel with the clearest named
fault (largest top evidence); without one on any channel it is ``unknown``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from vibra import diagnosis
from vibra.settings import Settings
from vibra.storage.tables import read_windows
from vibra.workspace import Workspace



@dataclass
class DiagnoseResult:
    recordings: list[dict] = field(default_factory=list)  # newest first within each machine
    rule: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    def latest(self) -> dict[str, dict]:
        """Each machine's newest recording verdict."""
        out: dict[str, dict] = {}
        for r in self.recordings:
            if r["equipment_id"] not in out:
                out[r["equipment_id"]] = r
        return out


def rule_text() -> str:
    return (f"a family is named when its evidence (whitened full-band envelope lines in orders, ÷ the local "
            f"floor, ÷ what white noise gives) is ≥ {diagnosis.FLOOR:g} and ≥ {diagnosis.RATIO:g}× the next "
            "family, on the median over the recording's windows; otherwise unknown")


def run(ws: Workspace, settings: Settings, *, equipment: list[str] | None = None) -> DiagnoseResult:
    """Verdicts of every recording (of ``equipment``), newest first per machine."""
    import polars as pl

    del settings  # the rule's constants are the library's (first principles); nothing here is a setting
    cols = list(diagnosis.EVIDENCE_COLUMNS)
    df = read_windows(ws, cols + ["sample_rate_hz"], equipment=equipment)
    result = DiagnoseResult(rule=rule_text())
    if df.height == 0:
        return result
    df = df.with_columns([pl.col(c).cast(pl.Float64) for c in cols])
    groups = (df.group_by("equipment_id", "recording_id", "channel", maintain_order=True)
              .agg(pl.col("window_start").min().alias("first"), pl.col("sample_rate_hz").max().alias("fs"),
                   *[pl.col(c) for c in cols]))
    per_recording: dict[tuple[str, str], list[dict]] = {}
    for row in groups.iter_rows(named=True):
        ev = np.column_stack([np.asarray(row[c], dtype=np.float64) for c in cols])
        band = f" in 0–{row['fs'] / 2000:.3g} kHz" if row["fs"] else ""  # the whitened full band
        v = diagnosis.recording_verdict(ev, band_text=band)
        per_recording.setdefault((row["equipment_id"], row["recording_id"]), []).append(
            {"channel": row["channel"], "first": row["first"], **v.as_dict()})
    rows = []
    for (eid, rid), channels in per_recording.items():
        def strength(c: dict) -> tuple:
            top = max((x for x in c["evidence"].values() if np.isfinite(x)), default=-np.inf)
            return (c["verdict"] != diagnosis.UNKNOWN, top)

        channels.sort(key=lambda c: c["channel"])
        best = max(channels, key=strength)
        rows.append({"equipment_id": eid, "recording_id": rid, "first": best["first"].isoformat(),
                     "verdict": best["verdict"], "channel": best["channel"], "text": best["text"],
                     "evidence": {k: _round(v) for k, v in best["evidence"].items()},
                     "window_share": {k: round(v, 3) for k, v in best["window_share"].items()},
                     "n_windows": best["n_windows"],
                     "channels": [{"channel": c["channel"], "verdict": c["verdict"], "text": c["text"]}
                                  for c in channels]})
    rows.sort(key=lambda r: (r["equipment_id"], r["first"]), reverse=True)
    rows.sort(key=lambda r: r["equipment_id"])
    result.recordings = rows
    return result


def _round(v: float) -> float | None:
    return round(float(v), 2) if np.isfinite(v) else None
