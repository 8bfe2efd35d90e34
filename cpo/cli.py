"""The command line: parse options, call one core function, map errors to exit codes.

The only typer user. Commands stay thin; each imports its core module lazily so that
`cpo --help` starts fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cpo import __version__
from cpo.errors import CpoError, ExitCode

app = typer.Typer(
    name="cpo",
    help="Claude Parallel Orchestrator: build a decomposed feature with many coding agents "
    "at once, one git worktree per task, wave after wave, merged and validated.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cpo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    pass


ParallelDir = Annotated[Path, typer.Argument(help="The parallel directory (holds manifest.json).")]


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; expected errors become one line, others a log pointer."""
    from cpo import ui
    from cpo.logfile import current_log_path, log

    try:
        app(args=argv, standalone_mode=False)
    except CpoError as exc:
        ui.error_lines(exc.lines())
        sys.exit(int(exc.exit_code))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(int(ExitCode.INTERRUPTED))
    except KeyboardInterrupt:
        ui.error_lines(["interrupted"])
        sys.exit(int(ExitCode.INTERRUPTED))
    except Exception as exc:  # click usage errors are handled below; this is a bug
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(int(ExitCode.USAGE))
        path = current_log_path()
        log.exception("internal error")
        ui.error_lines([f"internal error: {type(exc).__name__}: {exc}", f"details: {path}"])
        sys.exit(int(ExitCode.INTERNAL))
