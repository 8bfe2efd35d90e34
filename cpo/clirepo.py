"""The commands that make or tidy files and branches outside a run: `init`, `demo`,
`clean`, `integrate` and `templates install`. Registered on the app by cpo/cli.py."""

# No `from __future__ import annotations` in this module: typer reads every command's
# parameters with typing.get_type_hints, which compiles and evaluates each string
# annotation (cpo/cli.py; tests/test_startup.py checks).
import sys
from pathlib import Path
from typing import Annotated

import typer

from cpo.cliargs import ParallelDir, RunDir
from cpo.quickimport import quick_imports


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
