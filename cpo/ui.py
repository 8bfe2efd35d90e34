"""Everything cpo prints for people: error lines, summaries, live table, progress lines.

The only rich user besides cli.py.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from rich.console import Console

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False, soft_wrap=True)


def error_lines(lines: Iterable[str]) -> None:
    for line in lines:
        err_console.print(f"[bold red]error:[/] {line}", markup=True, emoji=False) if sys.stderr.isatty() else print(f"error: {line}", file=sys.stderr)


def warning_lines(lines: Iterable[str]) -> None:
    for line in lines:
        print(f"warning: {line}", file=sys.stderr)
