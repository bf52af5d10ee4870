"""Serve vibra's flows on this machine with their schedules: one command, no work pool, no worker.

    python -m vibra_flows.serve --home /srv/vibra/plant --source /mnt/plant-export

Runs until stopped (Ctrl-C). It needs a Prefect API: a running server (``PREFECT_API_URL``) to see
the runs in the UI, or none, in which case Prefect starts a temporary local one.

One naming scheme: :data:`SCHEDULES` is the one list of scheduled deployments. ``prefect.yaml`` declares
each under its name for a work pool (``nightly/nightly``); ``serve`` registers each as
``<name>-serve`` (``nightly/nightly-serve``), so serving on one server never takes over (and breaks) a
pool deployment of the same flow (tests/test_flows.py checks prefect.yaml against this table).
"""

from __future__ import annotations

import argparse

SERVED = "{}-serve"  # a served deployment's name, from its schedule's name
SCHEDULES = {  # deployment name → (flow key, cron, UTC); prefect.yaml declares the same
    "nightly": ("nightly", "0 1 * * *"),
    "retrain-weekly": ("train", "0 3 * * 0"),
    "forecast-6h": ("forecast", "30 */6 * * *"),
    "cluster-refresh-daily": ("cluster-refresh", "0 5 * * *"),
    "snapshot-daily": ("snapshot", "30 5 * * *"),
    "report-daily": ("report", "0 6 * * *"),
    "maintenance-daily": ("maintenance", "0 4 * * *"),
}


def deployments(home: str, source: str) -> list:
    from vibra_flows.stages import ALL_FLOWS

    out = []
    for name, (key, cron) in SCHEDULES.items():
        params = {"home": home, **({"source": source} if key == "nightly" else {})}
        out.append(ALL_FLOWS[key].to_deployment(name=SERVED.format(name), cron=cron, parameters=params,
                                                concurrency_limit=1))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True, help="workspace folder")
    parser.add_argument("--source", required=True, help="the plant's export folder")
    args = parser.parse_args(argv)
    from prefect import serve

    serve(*deployments(args.home, args.source))


if __name__ == "__main__":
    main()
