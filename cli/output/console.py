"""The consoles: rich on a terminal, plain wide text when piped; ``say`` on stdout, ``say_err`` on stderr."""

from __future__ import annotations


def console(stderr: bool = False):
    """Rich on a terminal; wide, colourless plain text when piped (logs, CI)."""
    from rich.console import Console

    screen = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if not screen.is_terminal:
        screen = Console(stderr=stderr, highlight=False, soft_wrap=True, width=200, no_color=True)
    return screen


def say(message: str) -> None:
    console().print(message, markup=False)


def say_err(message: str) -> None:
    console(stderr=True).print(message, markup=False)
