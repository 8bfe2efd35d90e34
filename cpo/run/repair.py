"""Repairing a failed wave validation: an agent in the integration worktree, then again.

When a wave's validation fails, a repair agent (the run's backend and settings) gets the
validation commands, their output's tail, and what each task of the wave did (its
marker's summary and its files); it commits a fix in the integration worktree and the
validation runs again, up to `Policy.repair` times (README, "Failed validations and
repairs").

Nothing merged is ever lost or rewritten. What the agent leaves uncommitted is committed
by cpo (as a task's leftovers are). A repair after which the validation still fails is
kept on a branch `<integration branch>-wave-N-repair-K` and the integration branch goes
back to the merged tasks, so it only ever holds the merges and fixes that validated; so
is a repair that moved the integration branch's history (a reset, a rebase) or left it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cpo.errors import CpoError
from cpo.git import MARKER, Git
from cpo.plan.model import TaskSpec, ValidationStep, WaveSpec
from cpo.run.agentrun import TaskSettings
from cpo.run.protocol import read_marker
from cpo.run.recovery import RepairRecord
from cpo.run.report import Report, TaskRecord, now_iso
from cpo.run.reportwriter import ReportWriter
from cpo.run.slots import Slots
from cpo.run.tasklog import AgentRun
from cpo.run.validation import ValidationResult

# Shown per task of the wave: its files beyond this many are counted, not listed.
MAX_FILES_LISTED = 30


@dataclass(frozen=True)
class TaskWork:
    """What one task of the wave did, as the repair agent is told."""

    task_id: str
    summary: str | None
    files: tuple[str, ...]

    @classmethod
    def of(cls, rec: TaskRecord) -> TaskWork:
        summary = (rec.marker or {}).get("summary")
        return cls(rec.id, summary if isinstance(summary, str) else None, tuple(rec.files_changed))


def repair_prompt(
    wave: int,
    steps: Sequence[ValidationStep],
    output_tail: str,
    work: Sequence[TaskWork],
    attempt: int,
    attempts: int,
) -> str:
    """The repair agent's prompt: what failed, what it printed, what the wave's tasks did."""
    commands = "\n".join(
        f"    {s.source.strip()}" if s.kind == "shell" else f"    python -c {s.source.strip()!r}"
        for s in steps
    )
    lines = [
        f"The tasks of wave {wave} were each done by a separate agent and merged into this "
        "worktree (the integration branch). The wave's validation now fails.",
        f"This is repair attempt {attempt} of {attempts}.",
        "",
        "## Validation commands (run in this directory)",
        commands,
        "",
        "## Their output (last part)",
        "```",
        output_tail.strip() or "(no output)",
        "```",
        "",
        "## What each task of the wave did",
    ]
    for w in work:
        shown = ", ".join(w.files[:MAX_FILES_LISTED])
        more = len(w.files) - MAX_FILES_LISTED
        lines += [
            f"### {w.task_id}",
            f"Summary: {w.summary or '(none given)'}",
            f"Files: {shown or '(none)'}" + (f" and {more} more" if more > 0 else ""),
        ]
    lines += [
        "",
        "## Your job",
        "Find the cause of the failure in the merged code and fix it with the smallest change "
        "that makes the validation pass; keep every task's intent. Run the validation "
        "commands to check. Commit the fix on the current branch (git add -A && git commit). "
        "Do not merge, rebase, reset, switch branches, push or use git stash (the stash is "
        "shared with the other agents' worktrees).",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class RepairEnv:
    """What the repairs of one run share."""

    git: Git
    agents: AgentRun
    writer: ReportWriter
    worktree: Path  # the integration worktree
    branch: str  # the integration branch
    settings: TaskSettings
    env: dict[str, str]  # the integration worktree's environment (cpo.run.taskenv)
    slots: Slots  # a repair agent counts toward --max-concurrent like a task's
    # Called with (wave, attempt, attempts, outcome): outcome None when it starts.
    shown: Callable[[int, int, int, str | None], None]


def repair_wave(
    env: RepairEnv,
    wave: WaveSpec,
    failed: ValidationResult,
    validate: Callable[[], ValidationResult],
    attempts: int,
) -> bool:
    """Up to `attempts` repairs of `wave`'s failed validation; True once it passes."""
    result = failed
    with env.writer.reading() as report:
        earlier = len(report.wave(wave.number).repairs)  # a resumed run's numbers go on
    for n in range(1, attempts + 1):
        if env.agents.registry.cancelled.is_set():
            return False
        env.shown(wave.number, n, attempts, None)
        try:
            outcome = _repair_once(env, wave, result, validate, earlier + n, (n, attempts))
        except CpoError as exc:  # git refused: the run stops as without repairs
            with env.writer.update_wave(wave.number, durable=True) as w:
                if w.repairs and w.repairs[-1].outcome == "running":
                    w.repairs[-1].outcome, w.repairs[-1].error = "git_error", exc.message
            env.shown(wave.number, n, attempts, "git_error")
            return False
        env.shown(wave.number, n, attempts, outcome.outcome)
        if outcome.outcome == "fixed":
            return True
        if outcome.outcome in ("interrupted", "not_started"):
            return False
        if outcome.validation is not None:
            result = outcome.validation
    return False


@dataclass(frozen=True)
class _Done:
    outcome: str
    validation: ValidationResult | None = None


def _repair_once(
    env: RepairEnv,
    wave: WaveSpec,
    failed: ValidationResult,
    validate: Callable[[], ValidationResult],
    number: int,
    of: tuple[int, int],
) -> _Done:
    # Ahead of every waiting task (rank -1): the run waits for this repair.
    if not env.slots.acquire(env.slots.ticket(-1)):
        return _Done("not_started")  # launches were stopped (interrupt, fail-fast, auth)
    try:
        return _repair_in_slot(env, wave, failed, validate, number, of)
    finally:
        env.slots.release()


def _repair_in_slot(
    env: RepairEnv,
    wave: WaveSpec,
    failed: ValidationResult,
    validate: Callable[[], ValidationResult],
    number: int,
    of: tuple[int, int],
) -> _Done:
    git, worktree = env.git, env.worktree
    name = f"wave-{wave.number}-repair-{number}"
    with env.writer.reading() as report:
        work = [TaskWork.of(report.tasks[t]) for t in wave.task_ids if report.tasks[t].merged]
    prompt = repair_prompt(wave.number, wave.validation, failed.output_tail, work, *of)
    start = git.run("rev-parse", "HEAD", cwd=worktree)
    rec = RepairRecord(
        number=number, started_at=now_iso(), log=str(env.agents.logs_dir / f"{name}.log")
    )
    with env.writer.update_wave(wave.number, durable=True) as w:
        w.repairs.append(rec)
    began = time.monotonic()
    task = TaskSpec(
        id=name,
        wave=wave.number,
        prompt=prompt,
        prompt_source="cpo repair prompt",
        branch=env.branch,
    )
    ran = env.agents.run(task, env.settings, worktree, number, env.env)
    summary = read_marker(worktree)
    (worktree / MARKER).unlink(missing_ok=True)
    git.commit_leftovers(worktree, f"cpo: uncommitted changes left by the {name} agent")
    head, on = git.worktree_head(worktree)
    validation: ValidationResult | None = None
    if on != env.branch or not git.is_ancestor(start, head):
        outcome = "rewrote_history"
    elif env.agents.registry.cancelled.is_set():
        outcome = "interrupted"
    elif head == start:
        outcome = "no_change" if ran.ok or ran.reason is None else "agent_failed"
    else:
        validation = validate()
        outcome = "fixed" if validation.ok else "still_failing"
    saved = None
    if outcome != "fixed":
        if head != start:  # its work, kept where the user can look at it
            saved = f"{env.branch}-{name}"
            if git.branch_exists(saved):  # left by a run whose report is gone
                saved = f"{saved}-{head[:8]}"
            git.create_branch(saved, head)
        # Untracked files stay (no clean): the integration worktree's setup made them.
        git.run("checkout", "-q", "--force", env.branch, cwd=worktree)
        git.run("reset", "-q", "--hard", start, cwd=worktree)
    with env.writer.update_wave(wave.number, durable=True) as w:
        rec.finished_at = now_iso()
        rec.duration_seconds = round(time.monotonic() - began, 3)
        rec.outcome = outcome
        # A fix that validates needs no marker: only the validation judges a repair.
        rec.error = None if ran.ok or outcome == "fixed" else ran.error or ran.reason
        rec.session_id, rec.cost_usd = ran.outcome.session_id, ran.outcome.cost_usd
        if head != start and on == env.branch:
            rec.diff_stat = git.run("diff", "--shortstat", start, head)
            rec.files_changed = git.files_changed(start, head)
        rec.commit = head if head != start else None
        rec.saved_branch = saved
        rec.validation_exit_code = validation.exit_code if validation else None
        said = (summary.data or {}).get("summary")
        rec.summary = said if isinstance(said, str) else None
        if outcome == "fixed":
            env.writer.report.integration_commit = head
    return _Done(outcome, validation)


def repair_lines(report: Report) -> list[str]:
    """One line per repair of the run (summary and `cpo integrate`'s report)."""
    return [
        f"wave {w.number}: repair {r.number} {r.outcome}"
        + (f" ({r.diff_stat})" if r.diff_stat else "")
        + (f", kept on {r.saved_branch}" if r.saved_branch else "")
        for w in report.waves
        for r in w.repairs
    ]
