"""`vibra rul`: remaining useful life per machine."""

from __future__ import annotations

from vibra_cli import output
from vibra_cli.options import EquipmentIds, Home, Json, context, machines


def rul_cli(equipment: EquipmentIds = None, home: Home = None, as_json: Json = False) -> None:
    """Remaining useful life of every machine: P10 / P50 / P90 (survival prior before degradation
    onset; similarity and Bayesian exponential degradation after), learned from the workspace's
    failed lives (`vibra label failure`). Writes data/lake/rul and artifacts/models/rul/<version>.

    Example: vibra rul --equipment pump-02 --json
    """
    from vibra_pipelines import rul

    ws, settings = context(home)
    equipment = machines(ws, settings, equipment)
    with output.bar("rul", as_json) as tick:
        result = rul.run(ws, settings, equipment=equipment, progress=tick)

    def human() -> None:
        lib = result.library
        output.say(f"library: {lib['n_failed']} failed lives of {lib['n_lives']}"
                   + (f", indicator {lib['indicator']['name']}" if lib.get("indicator") else "")
                   + ("" if lib.get("trusted") else f" (fewer than {lib['min_lives']}: too small to trust)"))
        rows = [{**m, "RUL P50 (P10–P90)": m.get("text", "—")} for m in result.machines]
        output.rows_table(rows, "remaining useful life", ["equipment_id", "status", "model", "RUL P50 (P10–P90)",
                                                          "reason"])
    output.emit(result.as_dict(), as_json, human)
