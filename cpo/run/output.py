"""What `cpo run` prints: the dry-run plan, the final summary, the --json document.

Kept apart from cli.py so that the command stays a thin parse-and-call.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from cpo.run.engine import RunResult
from cpo.run.options import RunContext, task_settings
from cpo.run.preflight import preflight, preflight_notes
from cpo.run.priority import launch_ranks
from cpo.run.report import Report


def launch_order_line(ctx: RunContext) -> str:
    """Which tasks start first when more are ready than there are agents (cpo.run.priority)."""
    ranks = launch_ranks(ctx.plan, ctx.opts.schedule)
    order = ", ".join(sorted(ranks, key=ranks.__getitem__))
    estimated = any(t.estimate is not None for t in ctx.plan.tasks.values())
    if ctx.opts.schedule == "waves":
        basis = "estimates" if estimated else "manifest order"
        return f"launch order within each wave (by {basis}): {order}"
    basis = "estimates" if estimated else "chain length"
    return f"launch order among ready tasks (by {basis}): {order}"


def dry_run_lines(ctx: RunContext) -> list[str]:
    plan = ctx.plan
    lines = [
        f"plan {plan.spec_id}: {len(plan.tasks)} tasks in {len(plan.waves)} waves, "
        f"at most {ctx.max_concurrent} agents at once, schedule {ctx.opts.schedule}",
        f"repository {ctx.repo}, base branch {ctx.base_branch} at {ctx.base_commit[:10]}",
    ]
    if ctx.opts.no_integration:
        lines.append("no integration branch: every task branches from the base; nothing merged")
    else:
        lines.append(
            f"integration branch {plan.integration_branch} "
            f"(worktree {ctx.integration_worktree}), created at the base"
        )
    for wave in plan.waves:
        checks = "; ".join(f"{s.kind}: {s.source}" for s in wave.validation) or "none"
        lines.append(f"wave {wave.number} (validation: {checks})")
        for tid in wave.task_ids:
            task = plan.tasks[tid]
            s = task_settings(ctx, task)
            skip = " [skipped: --skip]" if tid in ctx.opts.skip else ""
            if ctx.opts.wave is not None and task.wave != ctx.opts.wave:
                skip = " [not in --wave]"
            deps = f" after {', '.join(task.deps)}" if task.deps else ""
            lines.append(
                f"  {tid} → {ctx.worktree(tid)} → {task.branch}"
                f" ({s.backend}{', agent ' + task.agent if task.agent else ''}){deps}{skip}"
            )
    lines.append(launch_order_line(ctx))
    for p in preflight(ctx):
        lines.append(f"would stop the run: {p}")
    for note in preflight_notes(ctx):
        lines.append(f"note: {note}")
    lines.append("dry run: nothing was changed")
    return lines


def summary_document(result: RunResult) -> dict[str, Any]:
    r = result.report
    return {
        "cpo_report_version": r.cpo_report_version,
        "spec_id": r.spec_id,
        "status": r.status,
        "exit_code": int(result.exit_code),
        "integration_branch": r.integration_branch,
        "integration_commit": r.integration_commit,
        "report": f"{r.parallel_dir}/report.json",
        "totals": r.totals(),
        "waves": [{"number": w.number, "status": w.status} for w in r.waves],
        "tasks": [
            {
                "id": t.id,
                "wave": t.wave,
                "status": t.status,
                "reason": t.reason,
                "error": t.error,
                "commits": t.commits,
                "branch": t.branch,
                "cost_usd": t.cost_usd,
                "attempts": len(t.attempts),
            }
            for t in r.tasks.values()
        ],
        "next_step": r.next_step,
        "notes": result.notes,
    }


def print_json(result: RunResult) -> None:
    sys.stdout.write(json.dumps(summary_document(result), indent=2) + "\n")


def summary_lines(report: Report) -> list[str]:
    t = report.totals()
    lines = [
        f"{report.spec_id}: {report.status} — {t['completed']}/{t['tasks']} tasks completed"
        + (f", {t['failed']} failed" if t["failed"] else "")
        + (f", {t['skipped']} skipped" if t["skipped"] else "")
        + (f", ${t['cost_usd']:.2f}" if t["cost_usd"] else "")
    ]
    for rec in report.tasks.values():
        if rec.status in ("failed", "interrupted"):
            lines.append(f"  {rec.id}: {rec.status} ({rec.reason}) {rec.error or ''}".rstrip())
    for w in report.waves:
        if w.status == "failed" and w.note == "validation":
            lines.append(f"  wave {w.number}: validation failed (exit {w.validation_exit_code})")
    if report.integration_branch:
        lines.append(f"integration branch: {report.integration_branch}")
    lines.append(f"report: {report.parallel_dir}/report.json · logs: {report.parallel_dir}/logs/")
    if report.next_step:
        lines.append(f"next: {report.next_step}")
    return lines
