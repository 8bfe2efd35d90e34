"""The command line: parse options, call one core function, map errors to exit codes.

The only typer user. Commands stay thin; each imports its core module lazily so that
`cpo --help` starts fast.
"""

# No `from __future__ import annotations` in this module: typer reads every command's
# parameters with typing.get_type_hints, which compiles and evaluates each string
# annotation: ~20 ms of every command's start-up for cpo's ~250 options.
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from cpo import __version__
from cpo.errors import CpoError, ExitCode
from cpo.quickimport import end_start_up, quick_imports

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


def _ask_git_ahead(path: Path) -> None:
    """Start the run's set-up git queries while the engine imports (cpo.gitmemo)."""
    from cpo.errors import CpoError
    from cpo.git import Git, find_repo
    from cpo.gitmemo import ask_ahead

    try:
        root = find_repo(path.resolve())
    except (CpoError, OSError):
        return  # the run's own set-up says what is wrong
    ask_ahead(root, Git(root)._env)


def _parallel_dir(path: Path) -> Path:
    """`cpo validate dir/manifest.json` means the directory that holds it."""
    return path.parent if path.name == "manifest.json" and path.is_file() else path


ParallelDir = Annotated[
    Path,
    typer.Argument(help="The parallel directory (holds manifest.json).", callback=_parallel_dir),
]


def _run_dir(path: Path) -> Path:
    """Where a run's report is: a plan file's run writes into `PLAN.cpo/` next to it."""
    from cpo.planfile.paths import is_plan_file, output_dir

    return output_dir(path) if is_plan_file(path) else _parallel_dir(path)


RunDir = Annotated[
    Path,
    typer.Argument(
        help="The parallel directory (holds manifest.json), or a plan file (PLAN.md).",
        callback=_run_dir,
    ),
]


def _duration(value: str) -> float:
    """A duration flag: seconds, or 90s, 20m, 1.5h; more than zero."""
    return _parse_duration(value, allow_zero=False)


def _delay(value: str) -> float:
    """A delay flag: like a duration, but zero means no wait."""
    return _parse_duration(value, allow_zero=True)


def _parse_duration(value: str, *, allow_zero: bool) -> float:
    from cpo.duration import parse_duration

    try:
        return parse_duration(value, allow_zero=allow_zero)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


_DURATION_HELP = "seconds, or 90s, 20m, 1.5h"


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


# -- validate / init / schema -------------------------------------------------------------
@app.command()
def validate(
    parallel_dir: ParallelDir,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Missing prompt sections are errors, not warnings."),
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the plan or problems as JSON.")
    ] = False,
) -> None:
    """Check a parallel directory or plan file and print its plan (exit 0 valid, 1 invalid,
    2 unreadable)."""
    with quick_imports():
        from cpo import ui
        from cpo.errors import PlanError, UsageError
        from cpo.plan.load import load_plan
        from cpo.planfile.load import load_plan_file
        from cpo.planfile.paths import is_plan_file
        from cpo.run.changes import with_commit_warnings

    try:
        if is_plan_file(parallel_dir):
            plan = load_plan_file(parallel_dir)
        else:
            plan = load_plan(parallel_dir, strict=strict)
    except PlanError as exc:
        if json_out:
            ui.show_json(
                {
                    "valid": False,
                    "problems": [ui.problem_data(p) for p in exc.problems],
                    "warnings": [ui.problem_data(w) for w in exc.warnings],
                }
            )
        else:
            ui.show_problems(exc.problems, exc.warnings)
        raise typer.Exit(int(ExitCode.FAILED)) from None
    except UsageError as exc:
        if not json_out:
            raise
        ui.show_json({"valid": False, "error": " ".join(exc.lines())})
        raise typer.Exit(int(ExitCode.USAGE)) from None
    if not is_plan_file(parallel_dir):
        plan = with_commit_warnings(plan)  # files agents would miss: said, not refused
    if json_out:
        ui.show_json(ui.plan_data(plan))
    else:
        ui.show_plan(plan)


@app.command()
def init(
    parallel_dir: ParallelDir,
    tech_spec_id: Annotated[
        str | None, typer.Option("--tech-spec-id", "-t", help="e.g. TS-0042")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Short feature name, e.g. inventory")
    ] = None,
    plan_file: Annotated[
        bool, typer.Option("--plan", help="Write a sample plan file (PLAN.md) instead.")
    ] = False,
) -> None:
    """Create a parallel directory (manifest, sample task and prompt), or with --plan a
    sample plan file with work streams; never overwrites."""
    from cpo import ui
    from cpo.commands.init import init_directory, init_plan_file
    from cpo.errors import UsageError

    if plan_file:
        result = init_plan_file(parallel_dir)
    elif tech_spec_id is None or name is None:
        raise UsageError("cpo init DIR needs --tech-spec-id and --name (or --plan PLAN.md)")
    else:
        result = init_directory(parallel_dir, tech_spec_id, name)
    for line in ui.init_lines(result.created, result.kept):
        typer.echo(line)


# Name -> "module:function" returning a JSON Schema dict; adding a schema is one line here.
SCHEMAS: dict[str, str] = {
    "manifest": "cpo.plan.models:manifest_json_schema",
    "report": "cpo.run.report:report_schema",
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
        bool,
        typer.Option("--retry-failed", help="Run again only failed tasks and what they blocked."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the execution plan; change nothing.")
    ] = False,
    fail_fast: Annotated[
        bool | None,
        typer.Option("--fail-fast/--no-fail-fast", help="Stop everything at the first failure."),
    ] = None,
    on_conflict: Annotated[
        str | None,
        typer.Option(
            help="When a task's merge conflicts: rerun (default) runs it again on top of "
            "the work it conflicts with; resolve has an agent finish the merge; stop fails it."
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            parser=_duration,
            metavar="DURATION",
            help=f"Time per task before it is killed (default 2h): {_DURATION_HELP}.",
        ),
    ] = None,
    idle_timeout: Annotated[
        float | None,
        typer.Option(
            parser=_duration,
            metavar="DURATION",
            help=f"Time without agent output before it is killed: {_DURATION_HELP}.",
        ),
    ] = None,
    schedule: Annotated[
        str | None,
        typer.Option(
            help="waves (default): wave after wave; dag: each task once its deps are merged. "
            "A continued run keeps the schedule it was started with."
        ),
    ] = None,
    no_integration: Annotated[
        bool,
        typer.Option("--no-integration", help="Legacy: every task branches from base; no merges."),
    ] = False,
    backend: Annotated[
        str | None,
        typer.Option(help="Agent backend for every task: claude, codex, gemini, command."),
    ] = None,
    agent_command: Annotated[
        str | None,
        typer.Option(help="With --backend command: the shell command (prompt on stdin)."),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model for every task.")] = None,
    max_turns: Annotated[int | None, typer.Option(min=1, help="Agent turn limit.")] = None,
    approval_mode: Annotated[
        str | None, typer.Option(help="Backend-neutral: default, auto, none, always.")
    ] = None,
    sandbox_mode: Annotated[
        str | None, typer.Option(help="Backend-neutral: default, read-only, workspace, full.")
    ] = None,
    permission_mode: Annotated[
        str | None, typer.Option(help="claude permission mode (default bypassPermissions).")
    ] = None,
    retries: Annotated[
        int, typer.Option(min=0, help="Retries of a task hit by rate limits or overload.")
    ] = 2,
    retry_delay: Annotated[
        float,
        typer.Option(
            parser=_delay,
            metavar="DURATION",
            show_default="5s",
            help=f"First retry delay ({_DURATION_HELP}); doubles each retry.",
        ),
    ] = 5.0,
    workspace_root: Annotated[
        Path | None, typer.Option(help="Where worktrees go (default ../workspaces/<repo folder>).")
    ] = None,
    repair: Annotated[
        int | None,
        typer.Option(
            min=0, help="Repair agents per failed wave validation before the run stops (default 1)."
        ),
    ] = None,
    nudges: Annotated[
        int | None,
        typer.Option(
            min=0, help="Times an agent that stopped early is resumed before it fails (default 1)."
        ),
    ] = None,
    strict_scope: Annotated[
        bool | None,
        typer.Option(
            "--strict-scope/--no-strict-scope",
            help="Fail a task that changed files outside its ## Scope (default: only flag them).",
        ),
    ] = None,
    allow_dirty: Annotated[
        bool, typer.Option("--allow-dirty", help="Run although the working tree has changes.")
    ] = False,
    executor: Annotated[
        str,
        typer.Option(
            help="Where agents run: local (worktrees here, default); subprocess (each task "
            "through `cpo worker run-task` and --remote); ray (a Ray cluster)."
        ),
    ] = "local",
    remote: Annotated[
        str,
        typer.Option(
            metavar="NAME|URL",
            help="With an executor other than local: the git remote its workers fetch from "
            "and push to (default origin).",
        ),
    ] = "origin",
    ray_address: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="With --executor ray: the Ray dashboard's address, http://HEAD:8265 "
            "(default $RAY_ADDRESS, then executors.ray.address in the config).",
        ),
    ] = None,
    generate_only: Annotated[
        bool,
        typer.Option("--generate-only", help="Write scripts/run-parallel.sh and monitor-live.sh."),
    ] = False,
    stream: Annotated[
        list[str] | None,
        typer.Option("--stream", help="With a plan file: run only this stream (repeatable)."),
    ] = None,
    validate_cmd: Annotated[
        str | None,
        typer.Option(
            "--validate",
            metavar="CMD",
            help="With a plan file: the validation run on the merged streams (over the "
            "plan's frontmatter `validation:`).",
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON summary.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the summary.")] = False,
) -> None:
    """Run every task of a parallel directory with agents, wave after wave; or the work
    streams of a plan file (PLAN.md) side by side, statuses written back into it."""
    _ask_git_ahead(parallel_dir)
    with quick_imports():
        from cpo import ui
        from cpo.errors import UsageError
        from cpo.run import engine
        from cpo.run import options as runctx

    if schedule not in (None, "waves", "dag"):
        raise UsageError(f"--schedule {schedule}: choose waves or dag")
    if on_conflict not in (None, "rerun", "resolve", "stop"):
        raise UsageError(f"--on-conflict {on_conflict}: choose rerun, resolve or stop")
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
        schedule_given=schedule is not None,
        no_integration=no_integration,
        backend=backend,
        model=model,
        permission_mode=permission_mode,
        max_turns=max_turns,
        agent_command=agent_command,
        approval_mode=approval_mode,
        sandbox_mode=sandbox_mode,
        allow_dirty=allow_dirty,
        retries=retries,
        backoff_base=retry_delay,
        workspace_root=workspace_root,
        executor=executor,
        remote=remote,
        ray_address=ray_address,
        repair=repair,
        nudges=nudges,
        strict_scope=strict_scope,
        on_conflict=on_conflict,  # type: ignore[arg-type]  # checked above
        validate=validate_cmd,
    )
    from cpo.planfile.paths import is_plan_file

    labels = None
    if is_plan_file(parallel_dir):
        from cpo.commands import planrun

        opts = planrun.plan_options(parallel_dir, opts, tuple(stream or ()))
        labels = planrun.stream_labels(parallel_dir)
    elif stream or validate_cmd is not None:
        flag = "--stream" if stream else "--validate"
        raise UsageError(
            f"{flag}: only a plan file (PLAN.md) takes it; a parallel directory's validation "
            "is in its manifest"
        )
    if generate_only:
        from cpo.run.scripts import generate_scripts

        for path in generate_scripts(parallel_dir.resolve(), opts):
            typer.echo(f"wrote {path}")
        return
    if dry_run:
        from cpo.run import output as runcli

        dry = runcli.dry_run(runctx.prepare(parallel_dir, opts))
        if json_out:
            ui.show_json(runcli.dry_run_document(dry))
        else:
            ui.notes(dry.notes)
            if labels is not None:
                ui.print_lines(planrun.stream_lines(parallel_dir, tuple(stream or ())))
            ui.print_lines(runcli.dry_run_lines(dry))
        raise typer.Exit(int(dry.exit_code))
    mode = (
        "json" if json_out else "quiet" if quiet else ("live" if sys.stdout.isatty() else "plain")
    )
    progress = ui.progress_factory(mode, labels)
    if labels is not None:
        result = planrun.run_plan_file(parallel_dir, opts, progress, tuple(stream or ()))
    else:
        result = engine.execute(parallel_dir, opts, progress)
    from cpo.run import output as runcli  # after: its imports are the run's, done by now

    if json_out:
        runcli.print_json(result)
    else:
        ui.notes(result.notes)
        ui.summary(runcli.summary_lines(result.report), result.report.status)
    raise typer.Exit(int(result.exit_code))


# -- parallel (ad-hoc tasks) ---------------------------------------------------------------
@app.command()
def parallel(
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Task file (JSON, clinvk format); stdin when absent."),
    ] = None,
    max_parallel: Annotated[
        int | None, typer.Option("--max-parallel", min=1, help="Tasks at once.")
    ] = None,
    fail_fast: Annotated[
        bool | None,
        typer.Option("--fail-fast/--no-fail-fast", help="Stop everything at the first failure."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON summary.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the total line.")
    ] = False,
) -> None:
    """Run ad-hoc prompts at once, each with its own agent (claude, codex, gemini, command)."""
    with quick_imports():
        from cpo import ui
        from cpo.adhoc import run as adhoc
        from cpo.config import load_settings

    if file is None and sys.stdin.isatty():
        ui.parallel_reading_stdin()  # else it would seem to hang, waiting for input
    text, source = adhoc.read_task_source(file, sys.stdin.read)
    settings = load_settings(None, cwd=Path.cwd())
    stream = not (json_out or quiet)
    _plan, summary = adhoc.run_adhoc(
        text,
        source,
        options=adhoc.AdhocOptions(max_parallel=max_parallel, fail_fast=fail_fast),
        settings=settings,
        cwd=Path.cwd(),
        on_result=(lambda r: ui.print_lines([ui.parallel_task_line(r)]) if stream else None),
        on_log=ui.parallel_log,
        warn=lambda line: ui.warning_lines([line]),
    )
    if json_out:
        ui.show_json(summary.to_json())
    else:
        if stream:
            ui.print_lines(["", *ui.parallel_table_lines(summary.results)])
        ui.print_lines([ui.parallel_total_line(summary)])
    raise typer.Exit(int(ExitCode.OK if summary.failed == 0 else ExitCode.FAILED))


# -- serve ---------------------------------------------------------------------------------
@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8080,
    root: Annotated[
        list[Path] | None,
        typer.Option(
            "--root",
            metavar="DIR",
            help="A folder whose parallel directories the API may run and show "
            "(repeatable; default: the current directory).",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API and the web dashboard (extra: cpo-orchestrator[serve]).

    Keys come from CPO_API_KEYS (comma-separated) or the config's server.api_keys; with
    keys set, every endpoint but /health needs one (X-API-Key or Authorization: Bearer).
    Without a key only a loopback address is allowed.
    """
    from cpo.serve import require_extra

    require_extra()
    with quick_imports():  # and collection resumes: the server runs for hours
        from cpo.serve.main import serve as run_server
        from cpo.serve.main import server_config

    config = server_config(host, port, root or [])
    typer.echo(
        f"cpo serve: roots {', '.join(str(r) for r in config.roots)}; "
        f"API keys {'required' if config.api_keys else 'off (loopback only)'}",
        err=True,
    )
    run_server(config)


# -- worker ----------------------------------------------------------------------------------
worker_app = typer.Typer(
    help="The worker side of executors other than local (run on the machine of the agent).",
    no_args_is_help=True,
)
app.add_typer(worker_app, name="worker")


@worker_app.command("run-task")
def worker_run_task(
    spec: Annotated[str, typer.Argument(metavar="SPEC.json", help="The task launch; - for stdin.")],
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the working directory (to look into it).")
    ] = False,
) -> None:
    """Run one attempt of one task from its launch (what `cpo run --executor` sends):
    clone its branch from the git remote, run the agent, push the branch; one JSON event
    per line on stdout (started, log, agent_event, exited)."""
    with quick_imports():  # and collection resumes: an agent may run for hours
        from cpo.worker.runtask import read_launch, run_task

    raise typer.Exit(run_task(read_launch(spec), sys.stdout, keep=keep))


# -- config ----------------------------------------------------------------------------------
config_app = typer.Typer(
    help="Show cpo's settings (config files and defaults).", no_args_is_help=True
)
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(
    json_out: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Print the effective settings and where each value comes from."""
    from cpo import ui
    from cpo.config import load_settings, show_rows, user_config_path

    settings = load_settings(None, cwd=Path.cwd())
    ui.warning_lines(settings.warnings)
    rows = show_rows(settings)
    if json_out:
        ui.show_json(
            {
                "files": [str(f) for f in settings.files],
                "user_config": str(user_config_path()),
                "settings": {k: {"value": v, "source": s} for k, v, s in rows},
            }
        )
        return
    files = ", ".join(str(f) for f in settings.files) or f"none (user file: {user_config_path()})"
    ui.print_lines([f"config files: {files}", *ui.config_lines(rows)])


# -- status / clean / integrate / templates --------------------------------------------------
@app.command()
def status(
    parallel_dir: RunDir,
    watch: Annotated[
        bool,
        typer.Option("--watch", "-w", help="Refresh until the run ends (Ctrl-C leaves)."),
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print report.json plus a computed `live` field.")
    ] = False,
    all_tasks: Annotated[
        bool,
        typer.Option(
            "--all", "-a", help="List every task (default: at most 50, unfinished ones first)."
        ),
    ] = False,
) -> None:
    """Show a run's status, from any terminal, during or after the run.

    Exit 0 running or completed; 1 failed, interrupted or stopped (its cpo process is gone);
    2 no run yet.
    """
    with quick_imports():
        from cpo import ui
        from cpo.commands.status import read_status

    if watch and json_out:
        from cpo.commands.status import wait_for_end

        st = wait_for_end(parallel_dir)
        ui.show_json(st.data())
    elif watch:
        from cpo.statusview import STATUS_ROWS, watch_status

        st = watch_status(parallel_dir, rows=None if all_tasks else STATUS_ROWS)
    else:
        st = read_status(parallel_dir)
        if json_out:
            ui.show_json(st.data())
        else:
            from cpo.statusview import STATUS_ROWS, show_status

            show_status(st, rows=None if all_tasks else STATUS_ROWS)
    raise typer.Exit(int(st.exit_code))


# -- demo ----------------------------------------------------------------------------------
@app.command()
def demo(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Where to build the demo (a new folder; default: a temp dir)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON summary.")] = False,
) -> None:
    """A complete two-wave run in a throwaway repository with a scripted agent (no account)."""
    with quick_imports():
        from cpo import ui
        from cpo.commands import demo as demo_mod

    mode = "json" if json_out else ("live" if sys.stdout.isatty() else "plain")
    root, code, report = demo_mod.run_demo(directory, ui.progress_factory(mode))
    if json_out:
        import json

        typer.echo(
            json.dumps(
                {
                    "parallel_dir": str(root),
                    "status": report.status,
                    "exit_code": code,
                    "report": str(root / "report.json"),
                }
            )
        )
    else:
        from cpo.run import output as runcli

        ui.summary(runcli.summary_lines(report), report.status)
        ui.notes([])
        for line in demo_mod.where_to_look(root, report):
            typer.echo(line)
    raise typer.Exit(code)


@app.command()
def clean(
    parallel_dir: RunDir,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also remove unmerged branches, dirty worktrees and the unmerged integration "
            "branch (their work is lost).",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be removed; change nothing.")
    ] = False,
) -> None:
    """Remove the run's worktrees and its task branches already merged.

    Refuses (listing each) to remove a branch with commits not merged into the integration
    branch (or the base branch once that is gone), or a worktree with uncommitted changes.
    The integration branch is kept until it is merged into the base branch. The base branch
    and your own working tree are never touched. Exit 0 done, 1 something was refused.
    """
    from cpo import ui
    from cpo.commands.clean import apply_clean, clean_lines, plan_clean

    plan = plan_clean(parallel_dir, force=force)
    done = None if dry_run else apply_clean(plan)
    ui.print_lines(clean_lines(plan, done))
    raise typer.Exit(int(plan.exit_code))


@app.command()
def integrate(
    parallel_dir: RunDir,
    into: Annotated[
        str | None, typer.Option("--into", help="Target branch (default: the run's base branch).")
    ] = None,
    no_validate: Annotated[
        bool, typer.Option("--no-validate", help="Skip the final validation.")
    ] = False,
    allow_checkout_merge: Annotated[
        bool,
        typer.Option(
            "--allow-checkout-merge",
            help="When the target is checked out in a working tree (e.g. main in yours), "
            "fast-forward that tree to the validated merge (it must be clean).",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Integrate although the run did not complete.")
    ] = False,
) -> None:
    """Merge the run's integration branch into the target, after a final validation.

    The merge (--no-ff) is made in a temporary worktree at the target's head, and every
    wave's validation runs on that merge result, made ready as cpo run readies its
    integration worktree (included files, shared folders, the spec's setup), each command
    stopped at the validation timeout (config timeouts.task). If the target is not checked
    out anywhere, its branch is then moved to the merge commit. If it is checked out
    (usually main in your own working tree), cpo leaves that tree alone and prints the git
    command to run there, unless --allow-checkout-merge is given and the tree is clean:
    then it fast-forwards it. A conflict, failed setup or failed validation changes
    nothing. Writes integration-report.md in the parallel directory. Refuses a run that
    did not complete (lists the failed tasks) unless --force. Exit 0 merged (or command
    printed), 1 refused, conflict, setup or validation failed.
    """
    from cpo import ui
    from cpo.commands.integrate import IntegrateOptions, check_words, outcome_line
    from cpo.commands.integrate import integrate as do_integrate

    result = do_integrate(
        parallel_dir,
        IntegrateOptions(
            into=into,
            validate=not no_validate,
            force=force,
            allow_checkout_merge=allow_checkout_merge,
        ),
    )
    lines = [f"wave {c.wave} validation: {check_words(c)}" for c in result.checks]
    lines.append(outcome_line(result))
    if result.command:
        lines.append(f"  {result.command}")
    if result.next_step:
        lines.append(f"next: {result.next_step}")
    if result.report_path is not None:
        lines.append(f"report: {result.report_path}")
    ui.print_lines(lines)
    raise typer.Exit(int(result.exit_code))


templates_app = typer.Typer(
    help="Claude Code slash commands that call cpo (/parallel-run, /parallel-status).",
    no_args_is_help=True,
)
app.add_typer(templates_app, name="templates")


@templates_app.command("install")
def templates_install(
    user: Annotated[
        bool, typer.Option("--user", help="Install into ~/.claude/commands (all projects).")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Copy the slash commands into .claude/commands/ of this repository (or --user).

    Existing files are never overwritten without --force; the skipped ones are listed.
    """
    from cpo import ui
    from cpo.commands.templates import destination, install_lines, install_templates

    result = install_templates(destination(user, Path.cwd()), force=force)
    ui.print_lines(install_lines(result))
