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
from collections.abc import Callable
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


def nudged(
    first: AttemptResult,
    again: Callable[[str, str], AttemptResult],
    *,
    nudges: int,
    backend: str,
    idle: float | None,
    stopped: Callable[[], bool],
    uncommitted: Callable[[], bool],
    began: Callable[[Nudge], None],
    ended: Callable[[Nudge, Callable[[], None]], None],
) -> AttemptResult:
    """`first`, or what up to `nudges` resumes of its session (`again(session, message)`)
    made of it. Each nudge is told to `began` when it starts, then to `ended` with the
    function that fills in its outcome (the caller calls it under its report's lock).
    Shared by the local executor (`NudgedRun`) and the worker (cpo.worker.runtask)."""
    result = first
    for number in range(1, nudges + 1):
        session = result.outcome.session_id
        if (
            result.reason not in NUDGEABLE
            or not session
            or not get_backend(backend).resumes
            or stopped()
        ):
            break
        assert result.reason is not None
        message = nudge_message(result.reason, uncommitted=uncommitted(), idle=idle)
        nudge = Nudge(number=number, why=result.reason, session_id=session)
        began(nudge)
        start = time.monotonic()
        later = again(session, message)
        took = round(time.monotonic() - start, 3)

        def settle(nudge: Nudge = nudge, later: AttemptResult = later, took: float = took) -> None:
            nudge.outcome = "ok" if later.ok else later.reason
            nudge.cost_usd = later.outcome.cost_usd
            nudge.duration_seconds = took
            nudge.session_id = later.outcome.session_id or nudge.session_id

        ended(nudge, settle)
        result = replace(later, outcome=_sum(result.outcome, later.outcome))
    return result


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
        def again(session: str, message: str) -> AttemptResult:
            return self.inner.run(
                task, settings, worktree, attempt_no, base, resume=session, prompt=message
            )

        def began(nudge: Nudge) -> None:
            with self.writer.update_task(task.id) as rec:
                rec.attempts[-1].nudges.append(nudge)

        def ended(_nudge: Nudge, settle: Callable[[], None]) -> None:
            with self.writer.update_task(task.id):
                settle()

        return nudged(
            self.inner.run(task, settings, worktree, attempt_no, base),
            again,
            nudges=settings.nudges,
            backend=settings.backend,
            idle=settings.idle_timeout,
            stopped=self.inner.registry.cancelled.is_set,
            uncommitted=lambda: bool(self.git.dirty_paths(worktree)),
            began=began,
            ended=ended,
        )


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
