"""`vibra rul`: remaining useful life per machine."""

from __future__ import annotations

from vibra_cli import output
from vibra_cli.options import EquipmentIds, Home, Json, context, machines, nothing_yet


def rul_cli(equipment: EquipmentIds = None, home: Home = None, as_json: Json = False) -> None:
    """Remaining useful life of every machine, learned from the workspace's failed lives (`vibra label
    failure`). After degradation onset: "RUL, planning (early)" (`planning_s`: the answer that scores
    best when a late answer costs four times an early one) with the median and P10–P90; before
    onset: "no degradation yet" and the typical remaining life of the library (survival prior),
    never a number called RUL. Also the onset and the first anomaly alarm of the current life.
    Writes data/lake/rul and artifacts/models/rul/<version>.

    Example: vibra rul --equipment pump-02 --json
    """
    from vibra.report.summaries import RUL_NAME, rul_rows

    from vibra_pipelines import rul

    ws, settings = context(home)
    equipment = machines(ws, settings, equipment)
    with output.bar("rul", as_json) as tick:
        result = rul.run(ws, settings, equipment=equipment, progress=tick)
    payload = {**result.as_dict(), "machines": rul_rows(ws, settings, result.machines)}
    nothing_yet(not payload["machines"], "no machine has data yet; run `vibra ingest` first")

    def human() -> None:
        lib = result.library
        output.say(f"library: {lib['n_failed']} failed lives of {lib['n_lives']}"
                   + (f", indicator {lib['indicator']['name']}" if lib.get("indicator") else "")
                   + ("" if lib.get("trusted") else f" (fewer than {lib['min_lives']}: too small to trust)"))
        rows = [{**m, RUL_NAME: m["rul_text"], "details": m["rul_detail"], "onset": m["onset_at"] or "—",
                 "first alarm": m["first_alarm_at"] or "—"} for m in payload["machines"]]
        output.rows_table(rows, "remaining useful life", ["equipment_id", "status", RUL_NAME, "details", "onset",
                                                          "first alarm"])
        output.say("onset: the RUL health indicator's; first alarm: the anomaly model's, this life "
                   "(they answer different questions: docs/explanation.md, 'Alarm and RUL onset')")
    output.emit(payload, as_json, human)
