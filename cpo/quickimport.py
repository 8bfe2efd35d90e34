"""Imports without the garbage collector: cpo's start-up is mostly imports."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Whether the collector is paused since the entry point (`pause_for_start_up`).
_paused_at_start = False


def pause_for_start_up() -> None:
    """The entry point's first act, before cpo.cli imports typer: the collector stays
    paused through typer's import and its parsing of the command line (which imports
    pydantic and builds a type adapter per option: ~18 ms of CPU of `cpo run`'s start-up
    went to collections there), until the command's own imports are done
    (`quick_imports`) or, for a command without any, until it ends (`end_start_up`)."""
    global _paused_at_start
    if gc.isenabled():
        gc.disable()
        _paused_at_start = True


def end_start_up() -> None:
    """Resume collection if the entry point paused it (once; a no-op otherwise)."""
    global _paused_at_start
    if _paused_at_start:
        _paused_at_start = False
        gc.freeze()  # what start-up made lives as long as the process
        gc.enable()


@contextmanager
def quick_imports() -> Iterator[None]:
    """Pause the garbage collector while a command imports its modules.

    Imports create many long-lived objects (pydantic schemas, dataclasses), and the
    collector scans them again and again while they pile up, then once more at exit:
    ~60 ms of `cpo run`'s start-up here. What was imported is frozen (it lives as long as
    the process anyway) and collection resumes; a long run collects as usual. The pause
    of the start-up (`pause_for_start_up`) ends here too.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
        else:
            end_start_up()
