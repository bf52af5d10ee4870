"""Progress on stderr, only on a terminal (``--json`` and piped output carry nothing extra): bars, stage lines,
an ingest's files and MB/s."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator

from vibra_cli.output.console import console, say_err

@contextmanager
def bar(description: str, quiet: bool) -> Iterator[Callable[..., None]]:
    """A progress bar on stderr (only on a terminal); yields ``tick(done, total, what="")``, ``what``
    naming the item in hand (a machine, a model)."""
    screen = console(stderr=True)
    if quiet or not screen.is_terminal:
        yield lambda done, total, what="": None
        return
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn(escape(description)), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[what]}"),
                  TimeRemainingColumn(), console=screen, transient=True) as progress:
        task = progress.add_task(description, total=None, what="")
        yield lambda done, total, what="": progress.update(task, completed=done, total=total, what=escape(what))


def stages(quiet: bool) -> Callable[[str], None] | None:
    """Stage lines on stderr (``cluster``: read, UMAP, HDBSCAN, assign) — only on a terminal, so
    ``--json`` and piped output carry nothing extra."""
    if quiet or not sys.stderr.isatty():
        return None
    return say_err


@contextmanager
def ingest_progress(quiet: bool) -> Iterator[Callable[[str, dict], None]]:
    """Progress of an ingest: files done, MB/s; wait messages go to stderr always."""
    screen = console(stderr=True)

    def on_wait(info: dict) -> None:
        from rich.markup import escape

        screen.print(f"[yellow]{escape(info['message'])}[/yellow]")

    if quiet or not screen.is_terminal:
        yield lambda event, info: on_wait(info) if event == "wait" else None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    with Progress(TextColumn("ingest"), BarColumn(), TextColumn("{task.fields[done]}/{task.fields[files]} files"),
                  TransferSpeedColumn(), TimeRemainingColumn(), console=screen, transient=True) as progress:
        task = progress.add_task("ingest", total=None, done=0, files="?")

        def handle(event: str, info: dict) -> None:
            if event == "wait":
                on_wait(info)
            elif event == "start":
                progress.update(task, total=info["bytes"], files=info["files"])
            elif event == "file":
                progress.update(task, advance=info["bytes"], done=progress.tasks[0].fields["done"] + 1)

        yield handle
