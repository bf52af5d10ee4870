"""The diagnose stage: a bearing-fault verdict per recording, from the evidence columns in the lake.

Ingest stores each window's fault-family evidence (``evidence_outer_race``, ``evidence_inner_race``,
``evidence_ball``; :mod:`vibra.diagnosis.bearing`). The verdict is computed from those stored columns on
demand — by ``vibra diagnose`` and by the report — so it is never out of step with the features and
needs no table of its own. Ingest also stores, per recording and channel, the recording-level evidence
(``recording_evidence_*``), the speed it was read at and the spectrum's speed estimate. A recording's
verdict is that of its channel with the clearest named fault (then ``ambiguous``, ``no_fault_evidence``,
``not_diagnosable``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vibra.diagnosis import bearing

from vibra.report import summaries
from vibra.settings import Settings
from vibra.storage import ledger
from vibra.workspace import Workspace

from vibra_pipelines.runs import StageResult


@dataclass
class DiagnoseResult(StageResult):
    recordings: list[dict] = field(default_factory=list)  # newest first within each machine
    rule: str = ""

    def latest(self) -> dict[str, dict]:
        """Each machine's newest recording verdict."""
        out: dict[str, dict] = {}
        for r in self.recordings:
            if r["equipment_id"] not in out:
                out[r["equipment_id"]] = r
        return out


def rule_text() -> str:
    return (f"per channel, the whitened squared envelope spectrum averaged over the whole recording; a family's "
            f"evidence is the {bearing.STATISTIC_TEXT[bearing.STATISTIC]} its lines in orders (each ÷ its local floor), "
            f"÷ what white noise gives; a family is named when it is ≥ {bearing.FLOOR:g} and ≥ {bearing.RATIO:g}× the "
            f"next family; below {bearing.FLOOR:g} for all: no_fault_evidence; two within {bearing.RATIO:g}×: ambiguous; "
            "without rpm, geometry or samples: not_diagnosable")


def run(ws: Workspace, settings: Settings, *, equipment: list[str] | None = None) -> DiagnoseResult:
    """Verdicts of every recording (of ``equipment``), newest first per machine, each with its
    ``source_path`` (the file the user knows it by; None when the ledger has lost it)."""
    rows = summaries.verdicts(ws, equipment, settings)
    sources = ledger.source_paths(ws, [r["recording_id"] for r in rows]) if rows else {}
    return DiagnoseResult(recordings=[{**r, "source_path": sources.get(r["recording_id"])} for r in rows],
                          rule=rule_text())
