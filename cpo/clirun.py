"""`cpo run` (its options and body) and `cpo parallel`: the commands that run agents.

Registered on the app by cpo/cli.py; each imports what runs the agents lazily, once its
options are parsed, so that `cpo --help` starts fast.
"""

# No `from __future__ import annotations` in this module: typer reads every command's
# parameters with typing.get_type_hints, which compiles and evaluates each string
# annotation (cpo/cli.py; tests/test_startup.py checks).
import sys
from pathlib import Path
from typing import Annotated

import typer

from cpo.cliargs import DURATION_HELP, ParallelDir, delay, duration
from cpo.errors import ExitCode
from cpo.quickimport import quick_imports


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
            parser=duration,
            metavar="DURATION",
            help=f"Time per task before it is killed (default 2h): {DURATION_HELP}.",
        ),
    ] = None,
    idle_timeout: Annotated[
        float | None,
        typer.Option(
            parser=duration,
            metavar="DURATION",
            help=f"Time without agent output before it is killed: {DURATION_HELP}.",
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
            parser=delay,
            metavar="DURATION",
            show_default="5s",
            help=f"First retry delay ({DURATION_HELP}); doubles each retry.",
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
