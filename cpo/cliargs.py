"""What several commands' parameters share: the parallel-directory arguments (ParallelDir,
RunDir) and the duration flags' parsers. Their callbacks import what they need lazily, when
the options are parsed."""

# No `from __future__ import annotations` in this module: typer reads every command's
# parameters with typing.get_type_hints, which compiles and evaluates each string
# annotation (cpo/cli.py; tests/test_startup.py checks).
from pathlib import Path
from typing import Annotated

import typer


def _parallel_dir(path: Path) -> Path:
    """`cpo validate dir/manifest.json` means the directory that holds it."""
    return path.parent if path.name == "manifest.json" and path.is_file() else path


ParallelDir = Annotated[
    Path,
    typer.Argument(
        metavar="PARALLEL_DIR",
        help="The parallel directory (holds manifest.json).",
        callback=_parallel_dir,
    ),
]


def _run_dir(path: Path) -> Path:
    """Where a run's report is: a plan file's run writes into `PLAN.cpo/` next to it."""
    from cpo.planfile.paths import is_plan_file, output_dir

    return output_dir(path) if is_plan_file(path) else _parallel_dir(path)


RunDir = Annotated[
    Path,
    typer.Argument(
        metavar="PARALLEL_DIR|PLAN.md",
        help="The parallel directory (holds manifest.json), or a plan file (PLAN.md).",
        callback=_run_dir,
    ),
]


def duration(value: str) -> float:
    """A duration flag: seconds, or 90s, 20m, 1.5h; more than zero."""
    return _parse_duration(value, allow_zero=False)


def delay(value: str) -> float:
    """A delay flag: like a duration, but zero means no wait."""
    return _parse_duration(value, allow_zero=True)


def _parse_duration(value: str, *, allow_zero: bool) -> float:
    from cpo.duration import parse_duration

    try:
        return parse_duration(value, allow_zero=allow_zero)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


DURATION_HELP = "seconds, or 90s, 20m, 1.5h"
