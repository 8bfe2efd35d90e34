"""A nudge instead of a failure: an agent that stopped early is resumed in its session.

An agent that ends without the completion marker (with or without uncommitted work), or
that the idle timeout stopped, has often done most of its task: it lost track of the
protocol or waited on something. Before the attempt counts as failed, cpo continues the
same session (`claude --resume <id>`, `codex exec resume <id>`, `gemini --resume <id>`)
with a short message saying what is missing, up to `TaskSettings.nudges` times. Each
nudge is recorded in the attempt (report.json, `attempts[].nudges`). README, "Agents that
stop early".
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from cpo.agents import get_backend
from cpo.agents.base import AgentOutcome
from cpo.duration import format_duration
from cpo.git import MARKER, Git
from cpo.plan.model import TaskSpec
from cpo.run.agentrun import TaskSettings
from cpo.run.attempt import AttemptResult
from cpo.run.recovery import Nudge
from cpo.run.reportwriter import ReportWriter
from cpo.run.tasklog import AgentRun

# Reasons an attempt ended that a message in the same session can put right.
NUDGEABLE = ("no_completion_marker", "idle_timeout")


def nudge_message(reason: str, *, uncommitted: bool, idle: float | None) -> str:
    """What the resumed agent is told: what is missing, and what to do about it."""
    if reason == "idle_timeout":
        quiet = f" for {format_duration(idle)}" if idle else ""
        first = (
            f"You produced no output{quiet} and were stopped. Continue the task from where "
            "you left off; do not wait on anything that does not end by itself."
        )
    else:
        first = f"You ended without writing {MARKER}, so the task is not finished."
    work = (
        " Your changes are not committed yet: commit them (git add -A && git commit)."
        if uncommitted
        else ""
    )
    return (
        f"{first}{work} If the task is done, commit all of your work and write {MARKER} "
        'as the protocol says; if it cannot be done, write {"task_completed": false, '
        '"summary": "<why>"} in it.\n'
    )


class NudgedRun:
    """`AgentRun.run`, with the task's nudges when the agent stops early."""

    def __init__(self, inner: AgentRun, writer: ReportWriter, git: Git) -> None:
        self.inner = inner
        self.writer = writer
        self.git = git

    def run(
        self,
        task: TaskSpec,
        settings: TaskSettings,
        worktree: Path,
        attempt_no: int,
        base: dict[str, str],
    ) -> AttemptResult:
        result = self.inner.run(task, settings, worktree, attempt_no, base)
        for number in range(1, settings.nudges + 1):
            session = result.outcome.session_id
            if (
                result.reason not in NUDGEABLE
                or not session
                or not get_backend(settings.backend).resumes
                or self.inner.registry.cancelled.is_set()
            ):
                break
            assert result.reason is not None
            uncommitted = bool(self.git.dirty_paths(worktree))
            message = nudge_message(
                result.reason, uncommitted=uncommitted, idle=settings.idle_timeout
            )
            nudge = Nudge(number=number, why=result.reason, session_id=session)
            with self.writer.update_task(task.id) as rec:
                rec.attempts[-1].nudges.append(nudge)
            began = time.monotonic()
            later = self.inner.run(
                task, settings, worktree, attempt_no, base, resume=session, prompt=message
            )
            with self.writer.update_task(task.id) as rec:
                nudge.outcome = "ok" if later.ok else later.reason
                nudge.cost_usd = later.outcome.cost_usd
                nudge.duration_seconds = round(time.monotonic() - began, 3)
                nudge.session_id = later.outcome.session_id or session
            result = replace(later, outcome=_sum(result.outcome, later.outcome))
        return result


def _sum(first: AgentOutcome, then: AgentOutcome) -> AgentOutcome:
    """`then`, with what the attempt's earlier runs cost added: the attempt's total."""

    def add(a: float | None, b: float | None) -> float | None:
        return b if a is None else a + (b or 0)

    cost = add(first.cost_usd, then.cost_usd)
    ins = add(first.input_tokens, then.input_tokens)
    outs = add(first.output_tokens, then.output_tokens)
    return replace(
        then,
        session_id=then.session_id or first.session_id,
        cost_usd=round(cost, 6) if cost is not None else None,
        input_tokens=int(ins) if ins is not None else None,
        output_tokens=int(outs) if outs is not None else None,
    )
