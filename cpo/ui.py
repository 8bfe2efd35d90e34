"""Everything cpo prints for people: error lines, summaries, live table, progress lines.

The only rich user besides cli.py.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable

from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from cpo.progress import Progress
    from cpo.report import Report

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False, soft_wrap=True)


def error_lines(lines: Iterable[str]) -> None:
    for line in lines:
        err_console.print(f"[bold red]error:[/] {line}", markup=True, emoji=False) if sys.stderr.isatty() else print(f"error: {line}", file=sys.stderr)


def warning_lines(lines: Iterable[str]) -> None:
    for line in lines:
        print(f"warning: {line}", file=sys.stderr)


# -- run ------------------------------------------------------------------------------------
def progress_factory(mode: str) -> Callable[[Callable[[], Report]], Progress]:
    """A maker of the run's progress display for the output mode."""
    from cpo import progress

    def make(get_report: Callable[[], Report]) -> progress.Progress:
        if mode == "live":
            return progress.LiveProgress(get_report, out_console)
        if mode == "plain":
            return progress.PlainProgress()
        return progress.SilentProgress()

    return make


def notes(lines: Iterable[str]) -> None:
    for line in lines:
        print(f"note: {line}", file=sys.stderr)


def summary(lines: list[str], status: str) -> None:
    style = {"completed": "green", "failed": "red", "interrupted": "magenta"}.get(status, "")
    if not lines:
        return
    if sys.stdout.isatty():
        out_console.print(f"[bold {style}]{lines[0]}[/]")
        for line in lines[1:]:
            out_console.print(line, markup=False)
    else:
        print("\n".join(lines))
