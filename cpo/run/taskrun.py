"""Running one task: its attempts, retries and usage-limit pauses, and their records.

Called on a scheduler worker thread. Each attempt: its start point prepared, then its
agent run in an agent slot by the run's executor (`Attempts`: cpo.run.local, in a worktree
here, resumed if it stops early, cpo.run.nudge; cpo.run.remote, by a worker elsewhere),
then recorded from the `Exited` the executor gives back, the same whichever ran it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Protocol

from cpo.errors import CpoError, TaskFailure
from cpo.executors.spec import Exited
from cpo.git import Git
from cpo.logfile import log
from cpo.plan.model import TaskSpec, same_work
from cpo.proc import ProcessRegistry
from cpo.run.agentrun import TaskSettings
from cpo.run.attempt import Ran, not_run
from cpo.run.local import LocalExecutor, TaskNotes
from cpo.run.nudge import NudgedRun
from cpo.run.ready import TaskPrep
from cpo.run.report import Attempt, TaskRecord, now_iso
from cpo.run.reportwriter import ReportWriter
from cpo.run.scheduler import TaskOutcome
from cpo.run.slots import Slots, Ticket
from cpo.run.states import TaskStatus
from cpo.run.tasklog import AgentRun
from cpo.run.worktrees import RunWorktrees
from cpo.secrets import Masker

RETRYABLE = ("rate_limited", "overloaded", "usage_limit")
# A usage limit that names no reset time is retried after this long.
USAGE_LIMIT_DEFAULT_WAIT = 300.0


@dataclass(frozen=True)
class RunnerEnv:
    """What a run gives its task runner: where things go and what it shares."""

    git: Git
    writer: ReportWriter
    parallel_dir: Path
    worktrees: Mapping[str, Path]  # task id -> its worktree (cpo.run.layout)
    registry: ProcessRegistry
    slots: Slots
    masker: Masker
    # Files, setup commands, environment and ports of each task (cpo.run.ready).
    prep: TaskPrep
    fail_fast: bool = False
    # The worktrees the run's set-up made (cpo.run.worktrees); none: each made at launch.
    prepared: RunWorktrees | None = None
    # Where attempts run; none: the local executor (cpo.run.local), made from the above.
    attempts: Attempts | None = None

    @property
    def logs_dir(self) -> Path:
        return self.parallel_dir / "logs"


class Attempts(Protocol):
    """Where a task's attempts run (cpo.run.local, cpo.run.remote)."""

    @property
    def name(self) -> str: ...

    def prepare(self, task: TaskSpec, attempt_no: int) -> str:
        """Ready the task's start point for this attempt; the commit it starts from."""
        ...

    def run(self, task: TaskSpec, settings: TaskSettings, start: str, attempt_no: int) -> Ran:
        """Run the attempt's agent (the caller holds an agent slot)."""
        ...

    def adopt(self, task: TaskSpec, settings: TaskSettings, attempt: Attempt) -> Ran | None:
        """Follow an attempt an earlier coordinator started and did not see end (its
        `handle` recorded), to its end; None if it cannot be (the caller holds a slot)."""
        ...


class RunnerCallbacks(Protocol):
    """What the task runner asks of the run it works for (the engine)."""

    def settings_for(self, task: TaskSpec) -> TaskSettings: ...

    def start_point(self, task: TaskSpec) -> str:
        """The commit a task's branch starts from (see Engine.start_point)."""
        ...

    def task_started(self, task: TaskSpec) -> None: ...

    def task_action(self, task: TaskSpec, action: str) -> None: ...

    def successor_rank(self, task: TaskSpec) -> int | None:
        """The rank of a task the given one's merge will make ready, if any: its agent
        slot is kept for that task (cpo.run.slots)."""
        ...


@dataclass
class Launch:
    """One launch of a task by the scheduler, handed from the engine to the task runner."""

    task: TaskSpec
    rank: int = 0  # launch priority: agent slots go by it, and a retry keeps it
    # Its place in the queue for an agent slot, taken at launch; the first attempt uses
    # it, a retry queues again with the same rank.
    ticket: Ticket | None = None


class TaskRunner:
    """Runs tasks for one `cpo run`; shared by the scheduler's worker threads."""

    def __init__(self, env: RunnerEnv, run: RunnerCallbacks) -> None:
        self.env = env
        self.run_cb = run
        self.git = env.git
        self.writer = env.writer
        self.registry = env.registry
        self.slots = env.slots
        self.masker = env.masker
        self.notes = TaskNotes(env.logs_dir, env.writer, env.masker)
        agents = AgentRun(env.parallel_dir, env.logs_dir, env.registry, env.masker, run.task_action)
        self.agents = NudgedRun(agents, env.writer, env.git)
        self.attempts: Attempts = env.attempts or LocalExecutor(
            git=env.git,
            writer=env.writer,
            notes=self.notes,
            agents=self.agents,
            prep=env.prep,
            worktrees=dict(env.worktrees),
            start_point=run.start_point,
            prepared=env.prepared,
        )
        # A usage limit pauses every launch until it lifts (epoch seconds; 0: no pause).
        self.paused_until = 0.0
        self._pause_lock = threading.Lock()

    # -- the hook -------------------------------------------------------------------
    def run(self, launch: Launch) -> TaskOutcome:
        try:
            return self._run_safely(launch)
        finally:
            if launch.ticket is not None:  # it never asked for its agent slot: let others pass
                self.slots.drop(launch.ticket)
                launch.ticket = None

    def _run_safely(self, launch: Launch) -> TaskOutcome:
        task = launch.task
        rec = self.writer.report.tasks[task.id]
        unchanged = same_work(rec.content_hash, task.content_hash)
        if rec.status == "completed" and unchanged and rec.head:
            # Resumed: the work is done and unchanged; only the merge is missing.
            return TaskOutcome(ok=True)
        try:
            return self._run(launch)
        except TaskFailure as exc:
            return self._fail(task, exc.reason, exc.message)
        except CpoError as exc:
            return self._fail(task, "git_error", exc.message)
        except Exception as exc:  # a bug must fail this task, not hang the run
            log.exception("task %s: internal error", task.id)
            return self._fail(task, "internal_error", f"{type(exc).__name__}: {exc}")

    def _fail(self, task: TaskSpec, reason: str, error: str) -> TaskOutcome:
        with self.writer.update_task(task.id, durable=True) as rec:
            rec.status, rec.reason, rec.error = TaskStatus.FAILED, reason, error
            rec.finished_at = now_iso()
        return TaskOutcome(ok=False, reason=reason)

    def _run(self, launch: Launch) -> TaskOutcome:
        task = launch.task
        settings = self.run_cb.settings_for(task)
        started = time.monotonic()
        with self.writer.update_task(task.id) as rec:
            rec.reason, rec.error, rec.finished_at = None, None, None
            rec.warnings = []
            rec.backend, rec.agent = settings.backend, task.agent
            rec.worktree, rec.branch = str(self.env.worktrees[task.id]), task.branch
            rec.content_hash = task.content_hash
            rec.log = str(self.env.logs_dir / f"{task.id}.log")
        result = self._attempts(launch, settings)
        if result is None or result.reason == "not_started":
            return self._not_started(task, started_any=result is not None)
        with self.writer.update_task(task.id, durable=True) as rec:
            rec.duration_seconds = round(time.monotonic() - started, 3)
            rec.finished_at = now_iso()
            rec.status, rec.reason, rec.error = self._final_status(result)
        self._log_footer(task, rec)
        return TaskOutcome(
            ok=result.ok,
            reason=result.reason,
            interrupted=result.reason == "interrupted",
            halt="auth" if result.reason == "auth" else None,
        )

    def _attempts(self, launch: Launch, settings: TaskSettings) -> Exited | None:
        """Run the agent until it succeeds, fails for good or runs out of retries."""
        task = launch.task
        rec = self.writer.report.tasks[task.id]
        attempt_no = len(rec.attempts)
        cancelled = self.registry.cancelled
        result = self._adopt(launch, settings)
        if result is not None and (result.ok or result.reason not in RETRYABLE):
            return result
        for retry in range(settings.retries + 1):
            if not self._wait_for_pause():
                break
            attempt_no += 1
            start = self.attempts.prepare(task, attempt_no)
            attempt = Attempt(number=attempt_no, started_at=now_iso(), start_point=start)
            with self.writer.update_task(task.id) as rec:
                rec.attempts.append(attempt)
                rec.start_point = start
            go = partial(self.attempts.run, task, settings, start, attempt_no)
            result = self._attempt(launch, attempt_no, go) or not_run("crashed", "no result")
            if result.reason == "not_started":
                break
            self._record_attempt(task, attempt, result)
            if result.ok or result.reason not in RETRYABLE or retry == settings.retries:
                break
            if cancelled.is_set():
                break
            if result.reason == "usage_limit":
                self._pause(result.reset_at)
                continue
            delay = settings.backoff_base * (2**retry) * (0.5 + random.random())
            self.notes.line(task, f"[cpo] {result.reason}: retrying in {delay:.1f} s")
            if cancelled.wait(delay):
                break
        return result

    def _not_started(self, task: TaskSpec, *, started_any: bool) -> TaskOutcome:
        """Stopped before its agent ever started (waiting for a slot or a usage limit):
        nothing ran, so the scheduler decides (skipped, or pending for --resume)."""
        with self.writer.update_task(task.id) as rec:
            if started_any and rec.attempts:
                rec.attempts.pop()
                # Its branch holds nothing yet: a later run starts it afresh.
                rec.start_point = rec.attempts[-1].start_point if rec.attempts else None
            rec.status = TaskStatus.PENDING
        why = None if self.registry.cancelled.is_set() else self.slots.hold_reason
        return TaskOutcome(ok=False, reason=why, started=False)

    def _final_status(self, result: Exited) -> tuple[TaskStatus, str | None, str | None]:
        """(status, reason, error) of a task whose last attempt gave `result`."""
        if result.ok:
            return TaskStatus.COMPLETED, None, None
        if result.reason == "interrupted":
            return TaskStatus.INTERRUPTED, "interrupted", result.error
        return TaskStatus.FAILED, result.reason, self._mask(result.error)

    def _mask(self, text: str | None) -> str | None:
        return self.masker.mask(text) if text else None

    def _mark_running(self, task: TaskSpec) -> None:
        """The agent got its slot: from now on the task is running (once per task)."""
        if self.writer.report.tasks[task.id].status == "running":
            return
        with self.writer.update_task(task.id) as rec:
            rec.status = TaskStatus.RUNNING
            rec.started_at = now_iso()
        self.run_cb.task_started(task)

    # -- usage-limit pause -------------------------------------------------------------
    def _pause(self, reset_at: float | None) -> None:
        until = reset_at if reset_at else time.time() + USAGE_LIMIT_DEFAULT_WAIT
        with self._pause_lock:
            self.paused_until = max(self.paused_until, until)
            stamp = datetime.fromtimestamp(self.paused_until, timezone.utc)
        with self.writer.update(durable=True) as report:  # rare, and shown however short
            report.paused_until = stamp.isoformat(timespec="seconds")
        log.warning("usage limit: launches paused until %s", stamp.isoformat())

    def _wait_for_pause(self) -> bool:
        """Block while a usage limit pause lasts; False if the run was stopped meanwhile."""
        while True:
            with self._pause_lock:
                remaining = self.paused_until - time.time()
            if remaining <= 0:
                break
            if self.registry.cancelled.wait(remaining):
                return False
        if self.writer.report.paused_until is not None:
            with self.writer.update() as report:
                report.paused_until = None
        return not self.registry.cancelled.is_set()

    # -- one attempt ------------------------------------------------------------------
    def _adopt(self, launch: Launch, settings: TaskSettings) -> Exited | None:
        """The last attempt, if an earlier coordinator left it running (`--resume` after
        a kill), followed to its end and recorded; None if there is none to follow."""
        task = launch.task
        rec = self.writer.report.tasks[task.id]
        last = rec.attempts[-1] if rec.attempts else None
        if last is None or last.finished_at is not None or last.handle is None:
            return None
        result = self._attempt(
            launch, last.number, lambda: self.attempts.adopt(task, settings, last)
        )
        if result is not None and result.reason != "not_started":
            self._record_attempt(task, last, result)
            return result
        if result is None:  # gone: a new attempt starts from the same point
            lost = Exited(ok=False, reason="interrupted", error="stopped with the coordinator")
            self._record_attempt(task, last, lost)
        return None

    def _attempt(
        self, launch: Launch, attempt_no: int, go: Callable[[], Ran | None]
    ) -> Exited | None:
        """`go`, one agent run, inside an agent slot (taken by rank, then launch order);
        `not_started` without a slot; None when `go` ran nothing."""
        task, slots = launch.task, self.slots
        ticket, launch.ticket = launch.ticket or slots.ticket(launch.rank), None
        if not slots.acquire(ticket):
            return not_run("not_started")
        self._mark_running(task)
        log.info("task %s: agent started (attempt %d)", task.id, attempt_no)
        ran: Ran | None = Ran.of(not_run("crashed", "no result"))
        try:
            ran = go()
            if ran is not None and self._stops_launches(ran):
                # Before our slot is free: no other agent may start after this failure.
                slots.hold("auth" if ran.reason == "auth" else "fail_fast")
        finally:
            ok = ran is not None and ran.ok
            slots.release(keep_for=self.run_cb.successor_rank(task) if ok else None)
            log.info("task %s: agent ended: %s", task.id, ran and (ran.reason or "ok"))
        return None if ran is None else ran.finish()

    def _stops_launches(self, ran: Ran) -> bool:
        if ran.ok or ran.reason in ("interrupted", "not_started"):
            return False
        return ran.reason == "auth" or (self.env.fail_fast and ran.reason not in RETRYABLE)

    def _record_attempt(self, task: TaskSpec, attempt: Attempt, result: Exited) -> None:
        """Record an attempt from how it ended (the same for every executor)."""
        for warning in result.warnings:
            self.notes.warn(task, warning)
        with self.writer.update_task(task.id) as rec:
            attempt.finished_at = now_iso()
            attempt.status = self._final_status(result)[0]
            attempt.reason = result.reason
            attempt.error = self._mask(result.error)
            attempt.exit_code = result.exit_code
            attempt.session_id, attempt.cost_usd = result.session_id, result.cost_usd
            attempt.head = result.head
            attempt.kept_branch = result.kept_branch
            rec.leftovers_committed = rec.leftovers_committed or result.leftovers
            rec.head = result.head
            rec.commits, rec.files_changed = result.commits, list(result.files)
            rec.marker = result.marker
            rec.exit_code = attempt.exit_code
            rec.session_id = result.session_id or rec.session_id
            rec.turns = result.num_turns
            rec.input_tokens = _add(rec.input_tokens, result.input_tokens)
            rec.output_tokens = _add(rec.output_tokens, result.output_tokens)
            if result.cost_usd is not None:
                rec.cost_usd = round((rec.cost_usd or 0.0) + result.cost_usd, 6)

    # -- logs ---------------------------------------------------------------------------
    def _log_footer(self, task: TaskSpec, rec: TaskRecord) -> None:
        reason = f" ({rec.reason}{': ' + rec.error if rec.error else ''})" if rec.reason else ""
        self.notes.line(
            task,
            f"\n=== {rec.status}{reason} · commits {rec.commits} · "
            f"{rec.duration_seconds or 0:.1f} s ===",
        )


def _add(a: int | None, b: int | None) -> int | None:
    return b if a is None else a + (b or 0)
