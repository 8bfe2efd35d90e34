"""What `cpo run` prints: the dry-run plan, the final summary, the --json document.

Kept apart from cpo/clirun.py so that the command stays a thin parse-and-call.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from cpo.errors import ExitCode
from cpo.run.conflicts import conflict_lines
from cpo.run.engine import RunResult
from cpo.run.lock import lock_held, read_lock
from cpo.run.nextstep import cpo_command
from cpo.run.options import RunContext, task_settings
from cpo.run.preflight import preflight, preflight_notes
from cpo.run.priority import launch_ranks
from cpo.run.ready import INCLUDE_FILE, included_files, shared_dirs, spec_setup
from cpo.run.repair import repair_lines
from cpo.run.report import Report, status_words
from cpo.run.scopecheck import scope_lines
from cpo.run.scripts import run_flags


def launch_order(ctx: RunContext) -> list[str]:
    """The selected tasks in the order they start when more are ready than there are
    agents (cpo.run.priority)."""
    ranks = launch_ranks(ctx.plan, ctx.opts.schedule)
    return [tid for tid in sorted(ranks, key=ranks.__getitem__) if _not_run(ctx, tid) is None]


def launch_order_line(ctx: RunContext) -> str:
    order = ", ".join(launch_order(ctx)) or "none"
    estimated = any(t.estimate is not None for t in ctx.plan.tasks.values())
    if ctx.opts.schedule == "waves":
        basis = "estimates" if estimated else "manifest order"
        return f"launch order within each wave (by {basis}): {order}"
    basis = "estimates" if estimated else "chain length"
    return f"launch order among ready tasks (by {basis}): {order}"


def _not_run(ctx: RunContext, task_id: str) -> str | None:
    """Why a task is left out of this run by its options, or None."""
    if task_id in ctx.opts.skip:
        return "--skip"
    if ctx.opts.wave is not None and ctx.plan.tasks[task_id].wave != ctx.opts.wave:
        return "not in --wave"
    return None


@dataclass(frozen=True)
class DryRun:
    """What `cpo run` would do, and whether its preflight would let it start."""

    ctx: RunContext
    problems: list[str]
    notes: list[str]

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.USAGE if self.problems else ExitCode.OK

    @property
    def next_step(self) -> str:
        flags = run_flags(self.ctx.opts)
        again = cpo_command("run", self.ctx.plan.root, *flags)
        if self.problems:
            return f"fix what would stop the run, then: {again}"
        return f"start it: {again}"


def dry_run(ctx: RunContext) -> DryRun:
    """Preflight as the real run does it: a live run's lock first (the real run stops
    there, and the branches in the way are that run's), then every other check."""
    root = ctx.plan.root
    notes = [*preflight_notes(ctx), *ctx.settings.warnings]
    if lock_held(root):
        holder = read_lock(root)
        who = f" (pid {holder.pid} on {holder.host}, started {holder.started_at})" if holder else ""
        busy = f"{root} is being run by another cpo{who}: wait for it, or watch it with " + (
            cpo_command("status", root, "--watch")
        )
        return DryRun(ctx, [busy], notes)
    return DryRun(ctx, preflight(ctx), notes)


def dry_run_lines(dry: DryRun) -> list[str]:
    ctx = dry.ctx
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
    lines += _readiness_lines(ctx)
    for wave in plan.waves:
        checks = "; ".join(f"{s.kind}: {s.source}" for s in wave.validation) or "none"
        lines.append(f"wave {wave.number} (validation: {checks})")
        for tid in wave.task_ids:
            task = plan.tasks[tid]
            s = task_settings(ctx, task)
            why = _not_run(ctx, tid)
            skip = f" [skipped: {why}]" if why else ""
            deps = f" after {', '.join(task.deps)}" if task.deps else ""
            lines.append(
                f"  {tid} → {ctx.worktree(tid)} → {task.branch}"
                f" ({s.backend}{', agent ' + task.agent if task.agent else ''}){deps}{skip}"
            )
            if task.setup:
                lines.append(f"    setup: {'; '.join(task.setup)}")
    lines.append(launch_order_line(ctx))
    lines += [f"would stop the run: {p}" for p in dry.problems]
    lines.append("dry run: nothing was changed")
    lines.append(f"next: {dry.next_step}")
    return lines


def _readiness_lines(ctx: RunContext) -> list[str]:
    """What makes each worktree ready (cpo.run.ready): copied files, setup, ports."""
    files = included_files(ctx.git, ctx.repo, ctx.plan, ctx.settings)
    shown = ", ".join(files[:20]) + (f", ... ({len(files) - 20} more)" if len(files) > 20 else "")
    setup = spec_setup(ctx.plan, ctx.settings)
    first, last, count = ctx.settings.ports
    return [
        f"every worktree gets {len(files)} file(s) named by {INCLUDE_FILE}"
        + (f": {shown}" if files else ""),
        "setup in every worktree, the integration worktree too: "
        + ("; ".join(setup) if setup else "none"),
        f"shared (linked to {ctx.repo}'s copy): "
        + (", ".join(shared_dirs(ctx.plan, ctx.settings)) or "none"),
        f"each running task holds {count} ports from {first}-{last} ($CPO_PORT)"
        if count
        else "ports: none (ports.per_task is 0)",
    ]


def dry_run_document(dry: DryRun) -> dict[str, Any]:
    """`cpo run --dry-run --json`: the same facts as `dry_run_lines`, as data."""
    ctx, plan = dry.ctx, dry.ctx.plan
    return {
        "dry_run": True,
        "spec_id": plan.spec_id,
        "exit_code": int(dry.exit_code),
        "would_stop": dry.problems,
        "notes": dry.notes,
        "repository": str(ctx.repo),
        "base_branch": ctx.base_branch,
        "base_commit": ctx.base_commit,
        "integration_branch": None if ctx.opts.no_integration else plan.integration_branch,
        "integration_worktree": None if ctx.opts.no_integration else str(ctx.integration_worktree),
        "max_concurrent": ctx.max_concurrent,
        "schedule": ctx.opts.schedule,
        "included_files": included_files(ctx.git, ctx.repo, plan, ctx.settings),
        "setup": list(spec_setup(plan, ctx.settings)),
        "waves": [
            {
                "number": w.number,
                "validation": [{"kind": s.kind, "source": s.source} for s in w.validation],
                "tasks": list(w.task_ids),
            }
            for w in plan.waves
        ],
        "tasks": [
            {
                "id": t.id,
                "wave": t.wave,
                "branch": t.branch,
                "worktree": str(ctx.workspace_root / t.id),
                "backend": task_settings(ctx, t).backend,
                "agent": t.agent,
                "deps": list(t.deps),
                "skipped": _not_run(ctx, t.id),
                "setup": list(t.setup),
            }
            for t in plan.ordered_tasks()
        ],
        "launch_order": launch_order(ctx),
        "next_step": dry.next_step,
    }


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
        "waves": [
            {"number": w.number, "status": w.status, "repairs": [x.outcome for x in w.repairs]}
            for w in r.waves
        ],
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
                "nudges": sum(len(a.nudges) for a in t.attempts),
                "out_of_scope": t.out_of_scope,
                "conflicts": [
                    {"files": c.files, "with_tasks": c.with_tasks, "outcome": c.outcome}
                    for c in t.conflicts
                ],
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
            lines.append(f"  {rec.id}: {status_words(rec)} {rec.error or ''}".rstrip())
    for w in report.waves:
        if w.status == "failed" and w.note == "validation":
            lines.append(f"  wave {w.number}: validation failed (exit {w.validation_exit_code})")
    notes = (*conflict_lines(report), *repair_lines(report), *scope_lines(report))
    lines += [f"  {line}" for line in notes]
    if report.integration_branch:
        lines.append(f"integration branch: {report.integration_branch}")
    lines.append(f"report: {report.parallel_dir}/report.json · logs: {report.parallel_dir}/logs/")
    if report.next_step:
        lines.append(f"next: {report.next_step}")
    return lines
