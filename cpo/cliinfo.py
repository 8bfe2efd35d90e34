"""The commands that read and change nothing: `validate`, `schema`, `status` and
`config show`. Registered on the app by cpo/cli.py."""

# No `from __future__ import annotations` in this module: typer reads every command's
# parameters with typing.get_type_hints, which compiles and evaluates each string
# annotation (cpo/cli.py; tests/test_startup.py checks).
from pathlib import Path
from typing import Annotated

import typer

from cpo.cliargs import ParallelDir, RunDir
from cpo.errors import ExitCode
from cpo.quickimport import quick_imports


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


# Name -> "module:function" returning a JSON Schema dict; adding a schema is one line here.
SCHEMAS: dict[str, str] = {
    "manifest": "cpo.plan.models:manifest_json_schema",
    "report": "cpo.run.report:report_schema",
}


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


config_app = typer.Typer(
    help="Show cpo's settings (config files and defaults).", no_args_is_help=True
)


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
