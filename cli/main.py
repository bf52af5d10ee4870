"""The ``vibra`` command: the root app, its global options, the table of commands and the console
entry point. The commands live in :mod:`vibra_cli.commands`, one module per group; each parses its
options, builds settings (shared options and helpers: :mod:`vibra_cli.options`), calls one pipeline
function and prints its result. Heavy libraries are imported inside the commands so that
``vibra --help`` stays fast."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from vibra.errors import VibraError

from vibra_cli import output
from vibra_cli.commands import (anomaly, clusters, forecast, ingest, labels, maintain, query, readiness, report, rul,
                                snapshot, workspace)

app = typer.Typer(
    name="vibra",
    help="Condition monitoring for rotating equipment: ingest vibration exports, compute indicators, "
         "and more.\n\nExample: vibra init plant && cd plant && vibra synth --out export && vibra ingest export",
    no_args_is_help=True,
    invoke_without_command=True,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# The commands, in the order `vibra --help` lists them.
COMMANDS = [
    ("init", workspace.init_cli), ("synth", workspace.synth_cli), ("ingest", ingest.ingest_cli),
    ("status", workspace.status_cli), ("diagnose", ingest.diagnose_cli), ("train", anomaly.train_cli),
    ("detect", anomaly.detect_cli), ("anomalies", anomaly.anomalies_cli),
    ("alarms", anomaly.alarms_cli), ("doctor", maintain.doctor_cli),
    ("migrate", maintain.migrate_cli), ("runs", workspace.runs_cli), ("cluster", clusters.cluster_cli),
    ("clusters", clusters.clusters_cli), ("readiness", readiness.readiness_cli), ("report", report.report_cli),
    ("files", workspace.files_cli), ("sql", query.sql_cli), ("demo", workspace.demo_cli), ("rul", rul.rul_cli),
]
# The command groups (`vibra GROUP COMMAND`), in the same order.
GROUPS = [
    ("query", query.query_app), ("threshold", anomaly.threshold_app), ("baseline", anomaly.baseline_app),
    ("maintain", maintain.maintain_app),
    ("forecast", forecast.forecast_app), ("features", ingest.features_app), ("defects", clusters.defects_app),
    ("label", labels.label_app), ("snapshot", snapshot.snapshot_app),
]
for _name, _command in COMMANDS:
    app.command(_name)(_command)
for _name, _group in GROUPS:
    app.add_typer(_group, name=_name)


@app.callback()
def root_options(
    ctx: typer.Context,
    log_format: Annotated[str, typer.Option("--log-format", envvar="VIBRA_LOG_FORMAT", show_envvar=True,
                                            help="text or json (JSON lines on stderr, one per run event).")] = "text",
    log_level: Annotated[str, typer.Option("--log-level", envvar="VIBRA_LOG_LEVEL", show_envvar=True,
                                           help="debug, info, warning or error.")] = "warning",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the traceback of a logged error (an "
                                          "environment failure) on stderr, not only its line.")] = False,
    version: Annotated[bool, typer.Option("--version", "-V", is_eager=True, help="Print vibra's version and exit.")] = False,
) -> None:
    """Global options (before the command): logging, version."""
    if version:
        from vibra import __version__

        print(f"vibra {__version__}")
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        print(ctx.get_help())
        raise typer.Exit(2)
    try:
        output.setup_logging(log_format, log_level, verbose)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def numba_cache() -> None:
    """Point numba's on-disk cache at the user's cache folder (``$XDG_CACHE_HOME/vibra/numba``, else
    ``~/.cache/vibra/numba``) unless ``NUMBA_CACHE_DIR`` is set: one place for our kernels and the
    clustering's (UMAP, pynndescent), which any workspace reuses, so `vibra demo` compiles them once for
    every later command. Set before numba is imported (it reads its configuration then); an unwritable
    folder leaves numba's default (next to the sources)."""
    if "NUMBA_CACHE_DIR" in os.environ:
        return
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vibra" / "numba"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    if os.access(folder, os.W_OK):
        os.environ["NUMBA_CACHE_DIR"] = str(folder)


def main() -> None:
    """Console entry point: Typer handles usage errors (exit 2); an expected failure is one
    line on stderr and its exit code (1 bad input / failed work, 3 not ready)."""
    from vibra_pipelines.runs import ARGUMENTS

    numba_cache()
    ARGUMENTS.set(" ".join(sys.argv[1:]))
    try:
        app()
    except VibraError as exc:
        if "--json" in sys.argv[1:]:
            words = [a for a in sys.argv[1:] if not a.startswith("-")]
            groups = {name for name, _ in GROUPS}
            output.emit_error(exc, exc.exit_code, " ".join(words[:2] if words[:1] and words[0] in groups else words[:1]))
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except Exception as exc:
        # a write the disk refused outside a stage's own guard (the run record on a full disk): one line, no file
        # blamed; the traceback goes to the log
        from vibra.errors import disk_failure

        words = disk_failure(exc)
        if words is None:
            raise
        import logging

        logging.getLogger("vibra").debug("stopped", exc_info=exc)
        print(f"error: {words}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
