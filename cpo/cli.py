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
        # Without standalone mode click returns (not raises) the code of `typer.Exit(n)`.
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code != 0:
            sys.exit(code)
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
    except Exception as exc:
        # Usage errors (unknown option, bad value) come as typer's or, with older typer,
        # click's exception: both know how to show themselves.
        show = getattr(exc, "show", None)
        if isinstance(exc, typer.TyperException) or callable(show):
            if callable(show):
                show()
            else:
                ui.error_lines([str(exc)])
            sys.exit(int(ExitCode.USAGE))
        # Anything else is a bug: the traceback goes to the log, one line to the screen.
        path = current_log_path()
        log.exception("internal error")
        ui.error_lines([f"internal error: {type(exc).__name__}: {exc}", f"details: {path}"])
        sys.exit(int(ExitCode.INTERNAL))


# -- validate / init / schema -------------------------------------------------------------
@app.command()
def validate(
    parallel_dir: ParallelDir,
    strict: Annotated[
        bool, typer.Option("--strict", help="Missing prompt sections are errors, not warnings."),
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the plan or problems as JSON.")
    ] = False,
) -> None:
    """Check a parallel directory and print its plan (exit 0 valid, 1 invalid, 2 unreadable)."""
    from cpo import ui
    from cpo.errors import PlanError, UsageError
    from cpo.manifest import load_plan

    try:
        plan = load_plan(parallel_dir, strict=strict)
    except PlanError as exc:
        if json_out:
            ui.show_json({"valid": False, "problems": [ui.problem_data(p) for p in exc.problems],
                          "warnings": [ui.problem_data(w) for w in exc.warnings]})
        else:
            ui.show_problems(exc.problems, exc.warnings)
        raise typer.Exit(int(ExitCode.FAILED)) from None
    except UsageError as exc:
        if not json_out:
            raise
        ui.show_json({"valid": False, "error": " ".join(exc.lines())})
        raise typer.Exit(int(ExitCode.USAGE)) from None
    if json_out:
        ui.show_json(ui.plan_data(plan))
    else:
        ui.show_plan(plan)


@app.command()
def init(
    parallel_dir: ParallelDir,
    tech_spec_id: Annotated[str, typer.Option("--tech-spec-id", "-t", help="e.g. TS-0042")],
    name: Annotated[str, typer.Option("--name", "-n", help="Short feature name, e.g. inventory")],
) -> None:
    """Create a parallel directory (manifest, sample task and prompt); never overwrites."""
    from cpo import ui
    from cpo.scaffold import init_directory

    result = init_directory(parallel_dir, tech_spec_id, name)
    for line in ui.init_lines(result.created, result.kept):
        typer.echo(line)


# Name -> "module:function" returning a JSON Schema dict; adding a schema is one line here.
SCHEMAS: dict[str, str] = {
    "manifest": "cpo.models:manifest_json_schema",
}


@app.command()
def schema(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(SCHEMAS)}.")],
) -> None:
    """Print the JSON Schema of one of cpo's file formats."""
    import importlib

    from cpo import ui
    from cpo.errors import UsageError

    if name not in SCHEMAS:
        raise UsageError(f"unknown schema {name!r}: choose one of {', '.join(sorted(SCHEMAS))}")
    module, _, func = SCHEMAS[name].partition(":")
    ui.show_json(getattr(importlib.import_module(module), func)())


# -- run ---------------------------------------------------------------------------------
@app.command()
def run(
    parallel_dir: ParallelDir,
    max_concurrent: Annotated[
        int | None, typer.Option("--max-concurrent", "-j", min=1, help="Agents at once.")
    ] = None,
    wave: Annotated[
        int | None, typer.Option(help="Run only this wave (earlier ones must be merged).")
    ] = None,
    skip: Annotated[str, typer.Option(help="Comma-separated task ids not to run.")] = "",
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue a stopped, crashed or failed run.")
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Run again only failed tasks and what they blocked.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the execution plan; change nothing.")
    ] = False,
    fail_fast: Annotated[
        bool | None,
        typer.Option("--fail-fast/--no-fail-fast", help="Stop everything at the first failure."),
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Seconds per task before it is killed (default 7200).")
    ] = None,
    idle_timeout: Annotated[
        float | None, typer.Option(help="Seconds without agent output before it is killed.")
    ] = None,
    schedule: Annotated[
        str, typer.Option(help="waves: wave after wave; dag: each task once its deps are merged.")
    ] = "waves",
    no_integration: Annotated[
        bool,
        typer.Option("--no-integration", help="Legacy: every task branches from base; no merges."),
    ] = False,
    backend: Annotated[
        str | None, typer.Option(help="Agent backend for every task: claude, codex, gemini, command.")
    ] = None,
    agent_command: Annotated[
        str | None, typer.Option(help="With --backend command: the shell command (prompt on stdin).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model for every task.")] = None,
    max_turns: Annotated[int | None, typer.Option(min=1, help="Agent turn limit.")] = None,
    permission_mode: Annotated[
        str | None, typer.Option(help="claude permission mode (default bypassPermissions).")
    ] = None,
    retries: Annotated[
        int, typer.Option(min=0, help="Retries of a task hit by rate limits or overload.")
    ] = 2,
    workspace_root: Annotated[
        Path | None, typer.Option(help="Where worktrees go (default ../workspaces).")
    ] = None,
    allow_dirty: Annotated[
        bool, typer.Option("--allow-dirty", help="Run although the working tree has changes.")
    ] = False,
    generate_only: Annotated[
        bool,
        typer.Option("--generate-only", help="Write scripts/run-parallel.sh and monitor-live.sh."),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON summary.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the summary.")] = False,
) -> None:
    """Run every task of a parallel directory with agents, wave after wave."""
    from cpo import engine, runcli, runctx, ui
    from cpo.errors import UsageError

    if schedule not in ("waves", "dag"):
        raise UsageError(f"--schedule {schedule}: choose waves or dag")
    if generate_only:
        from cpo.scripts import generate_scripts

        for path in generate_scripts(parallel_dir.resolve()):
            typer.echo(f"wrote {path}")
        return
    opts = runctx.RunOptions(
        max_concurrent=max_concurrent,
        wave=wave,
        skip=tuple(s.strip() for s in skip.split(",") if s.strip()),
        retry_failed=retry_failed,
        resume=resume or retry_failed,
        dry_run=dry_run,
        fail_fast=fail_fast,
        timeout=timeout,
        idle_timeout=idle_timeout,
        schedule="dag" if schedule == "dag" else "waves",
        no_integration=no_integration,
        backend=backend,
        model=model,
        permission_mode=permission_mode,
        max_turns=max_turns,
        agent_command=agent_command,
        allow_dirty=allow_dirty,
        retries=retries,
        workspace_root=workspace_root,
    )
    if dry_run:
        ctx = runctx.prepare(parallel_dir, opts)
        for line in runcli.dry_run_lines(ctx):
            typer.echo(line)
        return
    mode = "json" if json_out else "quiet" if quiet else ("live" if sys.stdout.isatty() else "plain")
    result = engine.execute(parallel_dir, opts, ui.progress_factory(mode))
    if json_out:
        runcli.print_json(result)
    else:
        ui.notes(result.notes)
        ui.summary(runcli.summary_lines(result.report), result.report.status)
    raise typer.Exit(int(result.exit_code))
