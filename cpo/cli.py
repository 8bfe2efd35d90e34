"""The command line: the typer app, its commands registered in `cpo --help`'s order, and
`main`, which maps errors to exit codes.

With its command modules (cpo.cliargs: shared arguments; cpo.clirun: run, parallel;
cpo.cliinfo: validate, schema, status, config; cpo.clirepo: init, demo, clean, integrate,
templates; cpo.cliserve: serve, worker), the only typer user. Commands stay thin: each
parses its options and imports its core module lazily, so that `cpo --help` starts fast.
"""

# No `from __future__ import annotations` in this module or its command modules: typer reads
# every command's parameters with typing.get_type_hints, which compiles and evaluates each
# string annotation: ~20 ms of every command's start-up for cpo's ~250 options.
import sys
from typing import Annotated, NoReturn

import typer

from cpo import __version__, cliinfo, clirepo, clirun, cliserve
from cpo.errors import CpoError, ExitCode
from cpo.quickimport import end_start_up

app = typer.Typer(
    name="cpo",
    help="Claude Parallel Orchestrator: build a decomposed feature with many coding agents "
    "at once, one git worktree per task, wave after wave, merged and validated.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: typer's rich help imports rich.markdown and rich.traceback, which
    # more than doubles the start-up time of `cpo --help` (bench/bench_scale.py).
    rich_markup_mode=None,
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


# The commands, in the order `cpo --help` lists them (typer lists the groups after them).
app.command()(cliinfo.validate)
app.command()(clirepo.init)
app.command()(cliinfo.schema)
app.command()(clirun.run)
app.command()(clirun.parallel)
app.command()(cliserve.serve)
app.command()(cliinfo.status)
app.command()(clirepo.demo)
app.command()(clirepo.clean)
app.command()(clirepo.integrate)
app.add_typer(cliserve.worker_app, name="worker")
app.add_typer(cliinfo.config_app, name="config")
app.add_typer(clirepo.templates_app, name="templates")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; expected errors become one line, others a log pointer.

    With --json, stdout carries exactly one JSON document whatever happens: a
    failure that stops a command before it prints its own is given as an error document.
    """
    args = sys.argv[1:] if argv is None else argv
    as_json = "--json" in args[: args.index("--")] if "--" in args else "--json" in args
    try:
        # Without standalone mode click returns (not raises) the code of `typer.Exit(n)`.
        try:
            code = app(args=argv, standalone_mode=False)
        finally:  # the entry point's pause, for a command that ended it not itself
            end_start_up()
        if isinstance(code, int) and code != 0:
            sys.exit(code)
    except CpoError as exc:
        _fail(as_json, exc.lines(), exc.exit_code, next_step=getattr(exc, "next_step", None))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _fail(as_json, ["interrupted"], ExitCode.INTERRUPTED)
    except Exception as exc:
        from cpo.logfile import current_log_path, log

        # Usage errors (unknown option, bad value) come as typer's or, with older typer,
        # click's exception: both know how to show themselves.
        show = getattr(exc, "show", None)
        if isinstance(exc, typer.TyperException) or callable(show):
            if callable(show):
                show()
            fmt = getattr(exc, "format_message", None)
            message = str(fmt() if callable(fmt) else exc)
            _fail(as_json, [message], ExitCode.USAGE, shown=callable(show))
        # Anything else is a bug: the traceback goes to the log, one line to the screen.
        path = current_log_path()
        log.exception("internal error")
        lines = [f"internal error: {type(exc).__name__}: {exc}", f"details: {path}"]
        _fail(as_json, lines, ExitCode.INTERNAL)


def _fail(
    as_json: bool,
    lines: list[str],
    code: ExitCode,
    *,
    next_step: str | None = None,
    shown: bool = False,
) -> NoReturn:
    """One line per problem on stderr (unless already shown); with --json, the same as
    the one document on stdout. Then exit with `code`."""
    from cpo import ui  # lazily: it loads rich, which `cpo --help` does not need

    if not shown:
        ui.error_lines(lines)
    if as_json:
        ui.show_json(ui.error_document(lines, int(code), next_step))
    sys.exit(int(code))
