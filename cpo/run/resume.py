"""Continuing a run: what an earlier report says is done, checked against git.

The report is the memory, git is the truth: a task counts as done only when its recorded
head is really in the integration branch. A task whose definition changed since it ran
(content hash) runs again.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cpo.errors import PreflightError, UsageError
from cpo.plan.model import Plan, TaskSpec, same_work
from cpo.run.report import Report, TaskRecord
from cpo.run.resolve import markers_left
from cpo.run.states import TaskStatus, WaveStatus

if TYPE_CHECKING:
    from cpo.run.options import RunContext

# Skips caused by another task's failure: --retry-failed runs these again too.
_BLOCKED = ("dependency_failed", "fail_fast", "auth", "validation", "interrupted")


# What a task's record keeps from the earlier run: its history (attempts, start point,
# cost...). Its status is decided again; where it runs comes from the plan.
_KEPT = (
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
    "warnings",
    "log",
    "merge_commit",
    "started_at",
    "finished_at",
    "duration_seconds",
    "backend",
    "exit_code",
    "conflicts",
)

_CUT = "cpo was stopped while the resolver worked"

# A task failed with these had done its work: only its merge did not happen. Merged by
# hand since (its head in the integration branch), it is done.
_MERGE_FAILURES = ("conflict", "hook_rejected", "untracked_files")
# Held back from the merge for the user to look at (cpo.run.stash): merged by hand, it is
# done the same way.
_HELD_BACK = ("stashed_work", "stash_taken")


@dataclass(frozen=True)
class ResumePlan:
    done: frozenset[str] = frozenset()  # merged, unchanged: not run again
    validated: frozenset[int] = frozenset()
    retry: frozenset[str] = frozenset()  # what --retry-failed runs
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Verdict:
    """What an earlier run means for one task now."""

    record: TaskRecord
    done: bool = False
    retry: bool = False
    note: str | None = None


def plan_resume(ctx: RunContext, previous: Report | None, report: Report) -> ResumePlan:
    """Fill `report` from `previous` and decide what is done; reconcile with git first."""
    git, plan = ctx.git, ctx.plan
    integ = None if ctx.opts.no_integration else git.rev(plan.integration_branch)
    notes: list[str] = []
    if previous is None:
        notes.append("no earlier report found: every task runs")
    else:
        report.started_at = previous.started_at
    done: set[str] = set()
    retry: set[str] = set()
    for task in plan.ordered_tasks():
        prev = previous.tasks.get(task.id) if previous else None
        # A task held back for its stash was to be put right on its branch: its head now.
        recorded = prev.head if prev and prev.reason not in _HELD_BACK else None
        head = recorded or git.rev(task.branch)
        # Own commits (not already in the base) that the integration branch contains.
        in_integration = bool(
            integ
            and head
            and not git.is_ancestor(head, ctx.base_commit)
            and git.is_ancestor(head, integ)
        )
        if prev is not None and integ and in_integration:
            _check_cut_short_resolution(ctx, task.id, prev, integ)
        verdict = _verdict(task, report.tasks[task.id], prev, head, in_integration)
        report.tasks[task.id] = verdict.record
        done.update([task.id] if verdict.done else [])
        retry.update([task.id] if verdict.retry else [])
        notes.extend([verdict.note] if verdict.note else [])
    validated = _validated_waves(plan, previous, report, done)
    retry = _with_blocked(plan, retry, done)
    if ctx.opts.wave is not None and not ctx.opts.no_integration:
        _check_earlier_waves_merged(plan, ctx.opts.wave, done)
    return ResumePlan(frozenset(done), frozenset(validated), frozenset(retry), tuple(notes))


def _verdict(
    task: TaskSpec, rec: TaskRecord, prev: TaskRecord | None, head: str | None, merged: bool
) -> _Verdict:
    """The task's record for this run and whether it is done or to be retried."""
    if prev is None:
        if merged:  # no record, but its branch is in the integration: done
            return _Verdict(_merged(rec, head), done=True)
        return _Verdict(rec)
    rec = rec.model_copy(update={name: getattr(prev, name) for name in _KEPT})
    # Run again, a task whose merge conflicted starts from the integration head: on top
    # of the work it conflicted with, which its prompt names (cpo.run.conflicts).
    conflicted = prev.status == TaskStatus.FAILED and prev.reason == "conflict"
    if rec.conflicts and rec.conflicts[-1].outcome == "resolving":  # cpo was stopped
        cut: dict[str, str] = {"outcome": "unresolved", "error": _CUT}
        last = rec.conflicts[-1].model_copy(update={"outcome": "resolved"} if merged else cut)
        rec.conflicts = [*rec.conflicts[:-1], last]
    if not same_work(prev.content_hash, task.content_hash):
        update: dict[str, object] = {"status": TaskStatus.PENDING}
        if merged or conflicted:
            update["start_point"] = None  # build on the integration head
        note = f"{task.id} changed since it ran: it runs again"
        return _Verdict(rec.model_copy(update=update), retry=True, note=note)
    if merged and prev.status == TaskStatus.COMPLETED:
        return _Verdict(_merged(rec, head), done=True)
    if (
        merged
        and prev.status == TaskStatus.FAILED
        and prev.reason in (*_MERGE_FAILURES, *_HELD_BACK)
    ):
        rec = _merged(rec, head)
        if rec.conflicts and rec.conflicts[-1].outcome != "resolved":
            last = rec.conflicts[-1].model_copy(update={"outcome": "merged_by_hand"})
            rec.conflicts = [*rec.conflicts[:-1], last]
        note = f"{task.id} was merged by hand into the integration branch: it counts as merged"
        return _Verdict(rec, done=True, note=note)
    if conflicted:
        pending = rec.model_copy(update={"status": TaskStatus.PENDING, "start_point": None})
        return _Verdict(pending, retry=True)
    if prev.status == TaskStatus.COMPLETED:
        # Done but not merged: the runner skips to the merge.
        return _Verdict(rec.model_copy(update={"status": TaskStatus.COMPLETED}), retry=True)
    stopped = prev.status in (TaskStatus.FAILED, TaskStatus.INTERRUPTED, TaskStatus.RUNNING)
    blocked = prev.status == TaskStatus.SKIPPED and prev.reason in _BLOCKED
    pending = rec.model_copy(update={"status": TaskStatus.PENDING})
    return _Verdict(pending, retry=stopped or blocked)


def _check_cut_short_resolution(
    ctx: RunContext, task_id: str, prev: TaskRecord, integ: str
) -> None:
    """A resolver's merge cpo never checked (it was stopped meanwhile) must not count as
    merged while it holds conflict markers (cpo.run.resolve)."""
    last = prev.conflicts[-1] if prev.conflicts else None
    if last is None or last.outcome != "resolving":
        return
    marked = markers_left(ctx.git, integ, last.files)
    if marked:
        where = shlex.quote(str(ctx.integration_worktree))
        raise PreflightError(
            f"{task_id}: its conflict resolver was stopped with conflict markers committed "
            f"in {', '.join(marked)} on {ctx.plan.integration_branch}",
            hint=f"fix them with a commit in {where}, or undo that merge (git -C {where} reset "
            f"--hard {last.integration_head}); then resume",
        )


def _merged(rec: TaskRecord, head: str | None) -> TaskRecord:
    return rec.model_copy(update={"status": TaskStatus.COMPLETED, "merged": True, "head": head})


def _validated_waves(
    plan: Plan, previous: Report | None, report: Report, done: set[str]
) -> set[int]:
    """Waves validated before whose tasks are all still done; marked completed in `report`."""
    if previous is None:
        return set()
    validated = set()
    for wave in plan.waves:
        prev_wave = next((w for w in previous.waves if w.number == wave.number), None)
        if (
            prev_wave is not None
            and prev_wave.status == WaveStatus.COMPLETED
            and all(t in done for t in wave.task_ids)
        ):
            validated.add(wave.number)
            rec_wave = report.wave(wave.number)
            rec_wave.status = WaveStatus.COMPLETED
            rec_wave.validation_exit_code = prev_wave.validation_exit_code
    return validated


def _with_blocked(plan: Plan, retry: set[str], done: set[str]) -> set[str]:
    """The retry set grown by what its tasks blocked, transitively."""
    result, grew = set(retry), True
    while grew:
        grew = False
        for task in plan.ordered_tasks():
            if (
                task.id not in result
                and task.id not in done
                and any(d in result for d in task.deps)
            ):
                result.add(task.id)
                grew = True
    return result


def _check_earlier_waves_merged(plan: Plan, wave: int, done: set[str]) -> None:
    missing = [t.id for t in plan.ordered_tasks() if t.wave < wave and t.id not in done]
    if missing:
        raise UsageError(
            f"--wave {wave}: earlier waves are not merged into "
            f"{plan.integration_branch} yet (missing: {', '.join(missing)})",
            hint=f"run them first: cpo run {plan.root} --wave {plan.tasks[missing[0]].wave}",
        )
