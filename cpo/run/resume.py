"""Continuing a run: what an earlier report says is done, checked against git.

The report is the memory, git is the truth: a task counts as done only when its recorded
head is really in the integration branch. A task whose definition changed since it ran
(content hash) runs again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cpo.errors import UsageError
from cpo.run.report import Report

if TYPE_CHECKING:
    from cpo.run.options import RunContext

# Skips caused by another task's failure: --retry-failed runs these again too.
_BLOCKED = ("dependency_failed", "fail_fast", "auth", "validation", "interrupted")


@dataclass
class ResumePlan:
    done: set[str] = field(default_factory=set)  # merged, unchanged: not run again
    validated: set[int] = field(default_factory=set)
    retry: set[str] = field(default_factory=set)  # what --retry-failed runs
    notes: list[str] = field(default_factory=list)


def plan_resume(ctx: RunContext, previous: Report | None, report: Report) -> ResumePlan:
    """Fill `report` from `previous` and decide what is done; reconcile with git first."""
    git, plan = ctx.git, ctx.plan
    result = ResumePlan()
    integ = None if ctx.opts.no_integration else git.rev(plan.integration_branch)
    if previous is None:
        result.notes.append("no earlier report found: every task runs")
    else:
        report.started_at = previous.started_at
    for task in plan.ordered_tasks():
        rec = report.tasks[task.id]
        prev = previous.tasks.get(task.id) if previous else None
        if prev is not None:
            # Keep the history (attempts, start point, cost) of the earlier run.
            for name in (
                "attempts",
                "start_point",
                "head",
                "commits",
                "files_changed",
                "marker",
                "session_id",
                "cost_usd",
                "input_tokens",
                "output_tokens",
                "turns",
                "leftovers_committed",
                "log",
                "merge_commit",
                "started_at",
                "finished_at",
                "duration_seconds",
                "backend",
                "exit_code",
            ):
                setattr(rec, name, getattr(prev, name))
        head = (prev.head if prev else None) or git.rev(task.branch)
        changed = prev is not None and prev.content_hash != task.content_hash
        # Own commits (not already in the base) that the integration branch contains.
        in_integration = bool(
            integ
            and head
            and not git.is_ancestor(head, ctx.base_commit)
            and git.is_ancestor(head, integ)
        )
        if changed:
            result.notes.append(f"{task.id} changed since it ran: it runs again")
            rec.status = "pending"
            if in_integration:
                rec.start_point = None  # its old work is merged: build on top of it
            result.retry.add(task.id)
            continue
        if in_integration and (prev is None or prev.status == "completed"):
            rec.status, rec.merged = "completed", True
            rec.head = head
            result.done.add(task.id)
            continue
        if prev is None:
            continue
        if prev.status == "completed":
            rec.status = "completed"  # done but not merged: the runner skips to the merge
            result.retry.add(task.id)
        else:
            rec.status = "pending"
            if prev.status in ("failed", "interrupted", "running") or (
                prev.status == "skipped" and prev.reason in _BLOCKED
            ):
                result.retry.add(task.id)
    if previous is not None:
        for wave in plan.waves:
            prev_wave = next((w for w in previous.waves if w.number == wave.number), None)
            if (
                prev_wave is not None
                and prev_wave.status == "completed"
                and all(t in result.done for t in wave.task_ids)
            ):
                result.validated.add(wave.number)
                rec_wave = report.wave(wave.number)
                rec_wave.status = "completed"
                rec_wave.validation_exit_code = prev_wave.validation_exit_code
    # The retry set includes what the failed tasks blocked, transitively.
    grew = True
    while grew:
        grew = False
        for task in plan.ordered_tasks():
            if (
                task.id not in result.retry
                and task.id not in result.done
                and any(d in result.retry for d in task.deps)
            ):
                result.retry.add(task.id)
                grew = True
    if ctx.opts.wave is not None and not ctx.opts.no_integration:
        missing = [
            t.id for t in plan.ordered_tasks() if t.wave < ctx.opts.wave and t.id not in result.done
        ]
        if missing:
            raise UsageError(
                f"--wave {ctx.opts.wave}: earlier waves are not merged into "
                f"{plan.integration_branch} yet (missing: {', '.join(missing)})",
                hint=f"run them first: cpo run {plan.root} --wave {plan.tasks[missing[0]].wave}",
            )
    return result
