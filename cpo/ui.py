"""Everything cpo prints for people: error lines, summaries, live table, progress lines.

The only rich user besides cli.py.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from cpo.agents.common import shorten
from cpo.duration import format_duration

if TYPE_CHECKING:
    from cpo.adhoc.result import AdhocResult, AdhocSummary
    from cpo.commands.status import Status
    from cpo.errors import Problem
    from cpo.plan.model import Plan
    from cpo.run.progress import Progress
    from cpo.run.report import Report

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False, soft_wrap=True)


def error_lines(lines: Iterable[str]) -> None:
    for line in lines:
        if sys.stderr.isatty():
            err_console.print(f"[bold red]error:[/] {escape(line)}", emoji=False)
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
            return progress.LiveProgress(get_report, out_console)
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
        out_console.print(f"[bold {style}]{lines[0]}[/]")
        for line in lines[1:]:
            out_console.print(line, markup=False)
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
    import json

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


# -- status / clean / integrate / templates ------------------------------------------------
def _duration(secs: float | None) -> str:
    if secs is None:
        return "-"
    s = int(secs)
    if s >= 3600:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


def status_renderable(st: Status) -> Any:
    """Run status, waves, the task table (shared with the live view), totals, next step."""
    import time

    from rich.console import Group
    from rich.text import Text

    from cpo.commands.status import clock_for, task_elapsed
    from cpo.run.progress import STATUS_STYLE, render_table, render_waves

    r, live = st.report, st.live
    style = {"stopped": "magenta", "starting": "cyan"}.get(live.state) or STATUS_STYLE.get(
        live.state, ""
    )
    head = Text(f"cpo · {r.spec_id} · ", style="bold")
    head.append(live.message, style=f"bold {style}")
    head.append(f" · elapsed {_duration(live.elapsed_seconds)}")
    now = time.monotonic()
    elapsed = task_elapsed(r, clock_for(r, live.state, st.parallel_dir))
    started = {tid: now - secs for tid, secs in elapsed.items()}
    t = r.totals()
    commits = sum(rec.commits for rec in r.tasks.values())
    totals = (
        f"{t['completed']}/{t['tasks']} tasks completed"
        + (f", {t['failed']} failed" if t["failed"] else "")
        + (f", {t['skipped']} skipped" if t["skipped"] else "")
        + f", {commits} commit{'s' if commits != 1 else ''}"
        + (f", ${t['cost_usd']:.2f}" if t["cost_usd"] else "")
    )
    parts: list[Any] = [head, render_waves(r), render_table(r, started), Text(totals)]
    if r.base_branch:
        branches = f"base {r.base_branch}"
        if r.integration_branch:
            branches += f" · integration {r.integration_branch}"
        parts.append(Text(branches, style="dim"))
    if r.paused_until:
        parts.append(Text(f"launches paused by a usage limit until {r.paused_until}", "yellow"))
    if live.next_step:
        parts.append(Text(f"next: {live.next_step}"))
    return Group(*parts)


def show_status(st: Status) -> None:
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    console.print(status_renderable(st))


def watch_status(parallel_dir: Path, interval: float = 0.5) -> Status:
    """Redraw the status until the run is no longer active (or Ctrl-C); return the last.

    report.json is re-read only when its mtime changes; between checks we sleep, which is
    fine for a viewer. Off a terminal, the whole status is printed again at each change.
    """
    import time

    from rich.live import Live

    from cpo.commands.status import Status, compute_live, read_status, report_mtime
    from cpo.errors import UsageError

    st = read_status(parallel_dir)
    seen = report_mtime(st.parallel_dir)

    def refresh(current: Status) -> tuple[Status, bool]:
        nonlocal seen
        mtime = report_mtime(current.parallel_dir)
        if mtime == seen:
            # The lock holder may have died without the report changing.
            return Status(
                current.parallel_dir,
                current.report,
                compute_live(current.parallel_dir, current.report),
            ), False
        try:
            new = read_status(current.parallel_dir)
        except UsageError:
            return current, False  # mid-replacement or moved away: keep the last good one
        seen = mtime
        return new, True

    console = Console(highlight=False)
    try:
        if console.is_terminal:
            with Live(status_renderable(st), console=console, refresh_per_second=2) as live:
                while st.live.active:
                    time.sleep(interval)
                    st, _ = refresh(st)
                    live.update(status_renderable(st))
        else:
            show_status(st)
            while st.live.active:
                time.sleep(interval)
                st, changed = refresh(st)
                if changed or not st.live.active:
                    print(flush=True)
                    show_status(st)
                    sys.stdout.flush()
    except KeyboardInterrupt:
        pass  # leaving a viewer is not an error
    return st
