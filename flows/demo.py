"""``just flows-demo``: a seeded synthetic plant in a fresh workspace, then the nightly flow over it, locally.

    python -m vibra_flows.demo [--home DIR]

No server needed: Prefect starts a temporary local API for the run (about 15 s). Prints the
flow's final state, its summary and where the report is.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", default=None, help="workspace to create (default: a new temp folder)")
    parser.add_argument("--equipment", type=int, default=4)
    parser.add_argument("--days", type=float, default=3.0)
    args = parser.parse_args(argv)
    from vibra.workspace import init_workspace
    from vibra_pipelines import synth

    home = Path(args.home or tempfile.mkdtemp(prefix="vibra-flows-demo-"))
    ws, _ = init_workspace(home)
    start = (datetime.now(timezone.utc) - timedelta(days=args.days)).replace(minute=0, second=0, microsecond=0)
    synth.run(ws.root / "export", n_equipment=args.equipment, days=args.days, seed=7, start=start, workspace=ws)
    from vibra_flows.stages import nightly, train_flow

    train_flow(home=str(ws.root))
    state = nightly(home=str(ws.root), source=str(ws.root / "export"), return_state=True)
    summary = state.result()
    print(json.dumps({k: v for k, v in summary.items() if k != "ingest"}, indent=2, default=str))
    print(f"\nnightly flow: {state.name} — {state.message}")
    print(f"workspace: {ws.root}")
    print(f"report:    {(summary.get('report') or {}).get('index')}")


if __name__ == "__main__":
    main()
