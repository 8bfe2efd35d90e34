"""Everything cpo prints for people: error lines, summaries, live table, progress lines
(`cpo status`'s view is `statusview`).

rich is imported where something is drawn with it, never at the top: `--json`, `--quiet`
and output to a pipe print without it, and start faster.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cpo.agents.common import shorten
from cpo.duration import format_duration

if TYPE_CHECKING:
    from rich.console import Console

    from cpo.adhoc.result import AdhocResult, AdhocSummary
    from cpo.errors import Problem
    from cpo.plan.model import Plan
    from cpo.run.progress import Progress
    from cpo.run.report import Report


@functools.cache
def console(stderr: bool = False) -> Console:
    from rich.console import Console  # here: `--json` and `--quiet` print without rich

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def error_lines(lines: Iterable[str]) -> None:
    for line in lines:
        if sys.stderr.isatty():
            from rich.markup import escape

            console(stderr=True).print(f"[bold red]error:[/] {escape(line)}", emoji=False)
        else:
            print(f"error: {line}", file=sys.stderr)


def warning_lines(lines: Iterable[str]) -> None:
    for line in lines:
        print(f"warning: {line}", file=sys.stderr)


# -- run ------------------------------------------------------------------------------------
def progress_factory(
    mode: str, labels: Mapping[str, str] | None = None
) -> Callable[[Callable[[], Report]], Progress]:
    """A maker of the run's progress display for the output mode; `labels` end the
    `[PROGRESS]` lines of the tasks they name."""
    from cpo.run import progress

    def make(get_report: Callable[[], Report]) -> progress.Progress:
        if mode == "live":
            return progress.LiveProgress(get_report, console())
        if mode == "plain":
            return progress.PlainProgress(labels=labels)
        return progress.SilentProgress()

    return make


def notes(lines: Iterable[str]) -> None:
    for line in lines:
        print(f"note: {line}", file=sys.stderr)


def summary(lines: list[str], status: str) -> None:
    style = {"completed": "green", "failed": "red", "interrupted": "magenta"}.get(status, "")
    if not lines:
        return
    if sys.stdout.isatty():
        console().print(f"[bold {style}]{lines[0]}[/]")
        for line in lines[1:]:
            console().print(line, markup=False)
    else:
        print("\n".join(lines))


# -- validate / init -------------------------------------------------------------------------
def plan_lines(plan: Plan) -> list[str]:
    """The compact plan `cpo validate` prints: waves, tasks, prompt sources, deps, validation."""
    style = {"cpo": "cpo-style manifest", "legacy": "legacy manifest", "none": "no manifest"}
    n = len(plan.tasks)
    head = f"{plan.spec_id}" + (f" {plan.name}" if plan.name else "")
    lines = [
        f"{head} ({style[plan.manifest_style]}): {n} task{'s' if n != 1 else ''} in "
        f"{len(plan.waves)} wave{'s' if len(plan.waves) != 1 else ''}"
        + (f", max_parallel {plan.max_parallel}" if plan.max_parallel else "")
    ]
    for key, value in _readiness(plan.setup or (), plan.env, plan.share):
        lines.append(f"{key}: {value}")
    for wave in plan.waves:
        lines.append(f"wave {wave.number}:")
        for tid in wave.task_ids:
            t = plan.tasks[tid]
            extras = [
                f"{k}={v}"
                for k, v in (
                    ("agent", t.agent),
                    ("backend", t.backend),
                    ("model", t.model),
                    ("timeout", t.timeout and format_duration(t.timeout)),
                    ("estimate", t.estimate and format_duration(t.estimate)),
                    ("max_turns", t.max_turns),
                    ("permission_mode", t.permission_mode),
                )
                if v is not None
            ]
            lines.append(f"  {t.id}  [{t.branch}]")
            lines.append(f"      prompt: {t.prompt_source}")
            lines.append(
                f"      deps: {', '.join(t.deps) if t.deps else '-'}"
                + (f"  {' '.join(extras)}" if extras else "")
            )
            for key, value in _readiness(t.setup, t.env, ()):
                lines.append(f"      {key}: {value}")
            if t.sparse is not None:
                held = ", ".join(f + "/" for f in t.sparse) or "the top level only"
                lines.append(f"      sparse: {held}")
        for step in wave.validation:
            lines.append(f"  validation ({step.kind}): {step.source}")
    return lines


def _readiness(
    setup: tuple[str, ...], env: tuple[tuple[str, str], ...], share: tuple[str, ...]
) -> list[tuple[str, str]]:
    """What readies a worktree (cpo.run.ready), as `key: value` lines: env names only,
    since values may be secrets."""
    return [
        (key, value)
        for key, value in (
            ("setup", "; ".join(setup)),
            ("env", ", ".join(name for name, _ in env)),
            ("share", ", ".join(share)),
        )
        if value
    ]


def problem_data(p: Problem) -> dict[str, str]:
    return {"file": p.file, "field": p.field, "message": p.message, "severity": p.severity}


def plan_data(plan: Plan) -> dict[str, Any]:
    """`cpo validate --json`: the same facts as `plan_lines`, as data."""
    return {
        "valid": True,
        "spec_id": plan.spec_id,
        "name": plan.name,
        "technology": plan.technology,
        "manifest_style": plan.manifest_style,
        "max_parallel": plan.max_parallel,
        "integration_branch": plan.integration_branch,
        "setup": None if plan.setup is None else list(plan.setup),
        "worktree_include": list(plan.include),
        "share": list(plan.share),
        "env": [name for name, _ in plan.env],
        "waves": [
            {
                "number": w.number,
                "tasks": list(w.task_ids),
                "validation": [{"kind": s.kind, "source": s.source} for s in w.validation],
            }
            for w in plan.waves
        ],
        "tasks": [
            {
                "id": t.id,
                "wave": t.wave,
                "component": t.component,
                "branch": t.branch,
                "deps": list(t.deps),
                "prompt_source": t.prompt_source,
                "task_file": t.task_file,
                "agent": t.agent,
                "backend": t.backend,
                "model": t.model,
                "timeout": t.timeout,
                "estimate": t.estimate,
                "max_turns": t.max_turns,
                "permission_mode": t.permission_mode,
                "contracts": list(t.contracts),
                "skills": list(t.skills),
                "scope": [
                    {"action": s.action, "path": s.path, "symbol": s.symbol} for s in t.scope
                ],
                "content_hash": t.content_hash,
                "setup": list(t.setup),
                "env": [name for name, _ in t.env],
                "sparse": None if t.sparse is None else list(t.sparse),
            }
            for t in plan.ordered_tasks()
        ],
        "warnings": [problem_data(w) for w in plan.warnings],
        "problems": [],
    }


def show_plan(plan: Plan) -> None:
    warning_lines(str(w) for w in plan.warnings)
    for line in plan_lines(plan):
        print(line)
    print("valid" + (f" ({len(plan.warnings)} warning(s))" if plan.warnings else ""))


def show_problems(problems: list[Problem], warnings: list[Problem]) -> None:
    """Every problem of an invalid plan, one line each, then the count."""
    warning_lines(str(w) for w in warnings)
    error_lines(str(p) for p in problems)
    count = len(problems)
    print(f"invalid: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)


def error_document(lines: list[str], exit_code: int, next_step: str | None) -> dict[str, Any]:
    """What a command given --json prints when it fails before printing its own document."""
    status = "interrupted" if exit_code == 130 else "error"
    return {
        "status": status,
        "exit_code": exit_code,
        "error": lines[0] if lines else status,
        "errors": lines,
        "next_step": next_step,
    }


def show_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def init_lines(created: Iterable[Path], kept: Iterable[Path]) -> list[str]:
    return [f"created {p}" for p in created] + [f"kept    {p} (exists)" for p in kept]


# -- parallel (ad-hoc tasks) -------------------------------------------------------------
def parallel_task_line(r: AdhocResult) -> str:
    """The line streamed when a task finishes.

    Tasks are numbered by their `index`, as in the JSON results and in error messages
    (`tasks[0]`): counted from 0, clinvk's meaning of `index`. They are called by their
    `name` when they have one.
    """
    mark = "ok" if r.success else "FAILED"
    head = f"[{r.index}] {r.task_name} ({r.backend}) {mark} in {r.duration_seconds:.1f}s"
    if r.error:
        head += f": {shorten(r.error, 200)}"
    if r.worktree:
        head += f" (its changes are kept in the worktree {r.worktree})"
    return head


def parallel_table_lines(results: Iterable[AdhocResult]) -> list[str]:
    rows = [("#", "TASK", "BACKEND", "STATUS", "TIME", "OUTPUT / ERROR")]
    for r in results:
        said = r.error if r.error else r.output
        rows.append(
            (
                str(r.index),
                r.task_name,
                r.backend,
                "ok" if r.success else "failed",
                f"{r.duration_seconds:.1f}s",
                shorten(said or "", 60),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths, strict=True)) + "  " + row[5]
        for row in rows
    ]


def parallel_total_line(summary: AdhocSummary) -> str:
    n = len(summary.results)
    return (
        f"total: {n} task{'s' if n != 1 else ''}, {summary.completed} completed, "
        f"{summary.failed} failed, {summary.duration_seconds:.1f}s"
    )


def parallel_reading_stdin() -> None:
    """Said when `cpo parallel` waits for a task file typed on a terminal."""
    print(
        "cpo parallel: reading the task file (JSON) from stdin; end it with Ctrl-D, "
        "or pass -f FILE (cpo parallel --help for more)",
        file=sys.stderr,
        flush=True,
    )


def parallel_log(task_id: str, line: str) -> None:
    print(f"[{task_id}] {line}", file=sys.stderr, flush=True)


def print_lines(lines: Iterable[str]) -> None:
    for line in lines:
        print(line, flush=True)


# -- config ------------------------------------------------------------------------------
def config_lines(rows: Iterable[tuple[str, object, str]]) -> list[str]:
    """`cpo config show`: key = value  (source)."""
    import json as _json

    shown = [(key, _json.dumps(value), source) for key, value, source in rows]
    kw = max((len(k) for k, _, _ in shown), default=0)
    vw = max((len(v) for _, v, _ in shown), default=0)
    return [f"{k.ljust(kw)} = {v.ljust(vw)}  ({s})" for k, v, s in shown]
