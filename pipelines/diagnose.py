"""The diagnose stage: a bearing-fault verdict per recording, from the evidence columns in the lake.

Ingest stores each window's fault-family evidence (``evidence_outer_race``, ``evidence_inner_race``,
``evidence_ball``; :mod:`vibra.diagnosis.bearing`). The verdict is computed from those stored columns on
demand — by ``vibra diagnose`` and by the report — so it is never out of step with the features and
needs no table of its own. A recording's verdict is that of its channel with the clearest named
fault (largest top evidence); without one on any channel it is ``unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vibra.diagnosis import bearing

from vibra.report import summaries
from vibra.settings import Settings
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
    return (f"a family is named when its evidence (whitened full-band envelope lines in orders, ÷ the local "
            f"floor, ÷ what white noise gives) is ≥ {bearing.FLOOR:g} and ≥ {bearing.RATIO:g}× the next "
            "family, on the median over the recording's windows; otherwise unknown")


def run(ws: Workspace, settings: Settings, *, equipment: list[str] | None = None) -> DiagnoseResult:
    """Verdicts of every recording (of ``equipment``), newest first per machine."""
    del settings  # the rule's constants are the library's (first principles); nothing here is a setting
    return DiagnoseResult(recordings=summaries.verdicts(ws, equipment), rule=rule_text())
