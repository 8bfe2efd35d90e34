"""Running one task: its worktree, the agent's attempts, the verdict, and nothing lost.

Called on a scheduler worker thread. Each attempt: make or reset the worktree at the
task's start point (saving any earlier work on an attempt branch first), run the agent in
an agent slot (cpo.run.agentrun: logs and the success rule; cpo.run.nudge: resumed if it
stops early), then commit what the agent left uncommitted and record the attempt."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from cpo.agents.base import AgentOutcome
from cpo.errors import CpoError
from cpo.git import Git
from cpo.logfile import log
from cpo.plan.model import TaskSpec, same_work
from cpo.proc import ProcessRegistry
from cpo.run.agentrun import AgentRun, AttemptResult, TaskSettings
from cpo.run.claim import clear_marker, hand_over, reclaim
from cpo.run.nudge import NudgedRun
from cpo.run.protocol import read_marker
from cpo.run.ready import TaskPrep
from cpo.run.report import Attempt, ReportWriter, TaskRecord, now_iso
from cpo.run.scheduler import TaskOutcome
from cpo.run.slots import Slots, Ticket
from cpo.run.states import TaskStatus
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

    @property
    def logs_dir(self) -> Path:
        return self.parallel_dir / "logs"


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
        agents = AgentRun(env.parallel_dir, env.logs_dir, env.registry, env.masker, run.task_action)
        self.agents = NudgedRun(agents, env.writer, env.git)
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
        worktree = self.env.worktrees[task.id]
        started = time.monotonic()
        with self.writer.update_task(task.id) as rec:
            rec.reason, rec.error, rec.finished_at = None, None, None
            rec.warnings = []
            rec.backend, rec.agent = settings.backend, task.agent
            rec.worktree, rec.branch = str(worktree), task.branch
            rec.content_hash = task.content_hash
            rec.log = str(self.env.logs_dir / f"{task.id}.log")
        result = self._attempts(launch, settings, worktree)
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

    def _attempts(
        self, launch: Launch, settings: TaskSettings, worktree: Path
    ) -> AttemptResult | None:
        """Run the agent until it succeeds, fails for good or runs out of retries."""
        task = launch.task
        rec = self.writer.report.tasks[task.id]
        attempt_no = len(rec.attempts)
        result: AttemptResult | None = None
        cancelled = self.registry.cancelled
        for retry in range(settings.retries + 1):
            if not self._wait_for_pause():
                break
            attempt_no += 1
            self._reclaim(task, worktree)
            start = self._prepare_worktree(task, worktree, attempt_no)
            attempt = Attempt(number=attempt_no, started_at=now_iso(), start_point=start)
            with self.writer.update_task(task.id) as rec:
                rec.attempts.append(attempt)
                rec.start_point = start
            result = self._attempt(launch, settings, worktree, start, attempt_no)
            if result.reason == "not_started":
                break
            result = self._record_attempt(task, attempt, result, worktree, start)
            if result.ok or result.reason not in RETRYABLE or retry == settings.retries:
                break
            if cancelled.is_set():
                break
            if result.reason == "usage_limit":
                self._pause(result.outcome.reset_at)
                continue
            delay = settings.backoff_base * (2**retry) * (0.5 + random.random())
            self._log_line(task, f"[cpo] {result.reason}: retrying in {delay:.1f} s")
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

    def _final_status(self, result: AttemptResult) -> tuple[TaskStatus, str | None, str | None]:
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

    # -- worktree ---------------------------------------------------------------------
    def _prepare_worktree(self, task: TaskSpec, worktree: Path, attempt_no: int) -> str:
        """Make the task's worktree clean at its start point; return that commit.

        A branch left by an earlier attempt keeps its work: its head is saved on
        `<branch>-attempt-N` before the reset, and the report names it.
        """
        git, rec = self.git, self.writer.report.tasks[task.id]
        made = self.env.prepared
        if made is not None and made.take_fresh(worktree):
            # Made by the set-up with a new branch and no checkout: nothing in it to keep.
            start = self.run_cb.start_point(task)
            git.check_out(worktree, start)
            return start
        if not git.branch_exists(task.branch):
            start = self.run_cb.start_point(task)
            git.add_worktree(worktree, task.branch, start)
            return start
        # No recorded start point (a changed task whose old work is already merged):
        # start again from the integration head, on top of that work.
        start = rec.start_point or self.run_cb.start_point(task)
        if not worktree.is_dir() or worktree.resolve() not in git.worktrees():
            git.prune_worktrees()  # its folder may have been deleted by hand
            git.add_worktree(worktree, task.branch)
        elif git.complete_checkout(worktree):
            # A kill cut its checkout short: without this, every file would look deleted
            # and be committed as the agent's "uncommitted changes" below.
            self._log_line(task, "[cpo] finished a checkout an earlier run left half done")
        git.commit_leftovers(worktree, f"cpo: uncommitted changes left by {task.id}")
        head = git.rev(task.branch)
        if head and head != start and not git.is_ancestor(head, start):  # it holds work
            saved = f"{task.branch}-attempt-{attempt_no - 1}"
            if not git.branch_exists(saved):
                git.create_branch(saved, head)
            with self.writer.update_task(task.id) as rec:
                if rec.attempts:
                    rec.attempts[-1].saved_branch = saved
            self._log_line(task, f"[cpo] earlier work kept on branch {saved}")
        git.reset_worktree(worktree, start)
        return start

    def _reclaim(self, task: TaskSpec, worktree: Path) -> None:
        """An earlier attempt's commits off the task branch, onto a branch before any reset."""
        rec = self.writer.report.tasks[task.id]
        if not rec.attempts or not rec.start_point:
            return
        last, start = rec.attempts[-1].number, rec.start_point
        what, kept = reclaim(self.git, worktree, task.id, task.branch, start, last)
        if kept:
            with self.writer.update_task(task.id) as rec:
                rec.attempts[-1].kept_branch = kept
        self._warn(task, what)

    # -- one agent run ------------------------------------------------------------------
    def _attempt(
        self, launch: Launch, settings: TaskSettings, worktree: Path, start: str, attempt_no: int
    ) -> AttemptResult:
        """One agent run, inside an agent slot (taken by rank, then launch order)."""
        task, slots = launch.task, self.slots
        ticket, launch.ticket = launch.ticket or slots.ticket(launch.rank), None
        if not slots.acquire(ticket):
            return AttemptResult(False, "not_started", None, AgentOutcome(), None)
        self._mark_running(task)
        log.info("task %s: agent started (attempt %d)", task.id, attempt_no)
        result = AttemptResult(False, "crashed", "no result", AgentOutcome(), None)
        started = None
        try:
            log_line = self._log_line
            started = self.env.prep.start(task, worktree, attempt_no, settings.timeout, log_line)
            if started.error is not None:
                return AttemptResult(False, "setup_failed", started.error, AgentOutcome(), None)
            # Just before the agent: a marker counts only if this attempt's agent writes it.
            self._warn(task, clear_marker(self.git, worktree, start, task.id))
            result = self.agents.run(task, settings, worktree, attempt_no, started.env)
            if self._stops_launches(result):
                # Before our slot is free: no other agent may start after this failure.
                slots.hold("auth" if result.reason == "auth" else "fail_fast")
        finally:
            if started is not None:
                started.release()
            slots.release(keep_for=self.run_cb.successor_rank(task) if result.ok else None)
            log.info("task %s: agent ended: %s", task.id, result.reason or "ok")
        return result

    def _stops_launches(self, result: AttemptResult) -> bool:
        if result.ok or result.reason in ("interrupted", "not_started"):
            return False
        return result.reason == "auth" or (self.env.fail_fast and result.reason not in RETRYABLE)

    def _record_attempt(
        self,
        task: TaskSpec,
        attempt: Attempt,
        result: AttemptResult,
        worktree: Path,
        start: str,
    ) -> AttemptResult:
        """Record an attempt once its work is on the task branch (cpo.run.claim); the
        result, failed if that work could not be the task's."""
        marker = read_marker(worktree)  # before hand_over, which may remove a committed one
        # Whatever happened, the agent's edits are committed and on a branch: never lost.
        work = hand_over(
            self.git, worktree, task.id, task.branch, start, attempt.number, ok=result.ok
        )
        if work.leftovers:
            self._log_line(task, "[cpo] committed changes the agent left uncommitted")
        for warning in work.warnings:
            self._warn(task, warning)
        if work.reason is not None:
            self._log_line(task, f"[cpo] {work.reason}: {work.error}")
            if result.ok:  # an earlier failure stays the reason; the log says both
                result = replace(result, ok=False, reason=work.reason, error=work.error)
        head, commits, files = work.head, work.commits, work.files
        o = result.outcome
        with self.writer.update_task(task.id) as rec:
            attempt.finished_at = now_iso()
            attempt.status = self._final_status(result)[0]
            attempt.reason = result.reason
            attempt.error = self._mask(result.error)
            attempt.exit_code = result.proc.returncode if result.proc else None
            attempt.session_id, attempt.cost_usd, attempt.head = o.session_id, o.cost_usd, head
            attempt.kept_branch = work.kept_branch
            rec.leftovers_committed = rec.leftovers_committed or work.leftovers
            rec.head = head
            rec.commits, rec.files_changed = commits, files
            rec.marker = marker.data if marker.present else None
            rec.exit_code = attempt.exit_code
            rec.session_id = o.session_id or rec.session_id
            rec.turns = o.num_turns
            rec.input_tokens = _add(rec.input_tokens, o.input_tokens)
            rec.output_tokens = _add(rec.output_tokens, o.output_tokens)
            if o.cost_usd is not None:
                rec.cost_usd = round((rec.cost_usd or 0.0) + o.cost_usd, 6)
        return result

    # -- logs ---------------------------------------------------------------------------
    def _warn(self, task: TaskSpec, warning: str | None) -> None:
        """A warning in the task log and the report."""
        if warning is None:
            return
        self._log_line(task, f"[cpo] warning: {warning}")
        with self.writer.update_task(task.id) as rec:
            rec.warnings.append(warning)

    def _log_line(self, task: TaskSpec, text: str) -> None:
        text = self.masker.mask(text)  # setup commands print what they like
        with (self.env.logs_dir / f"{task.id}.log").open("a", encoding="utf-8") as fh:
            fh.write(text + "\n")

    def _log_footer(self, task: TaskSpec, rec: TaskRecord) -> None:
        reason = f" ({rec.reason}{': ' + rec.error if rec.error else ''})" if rec.reason else ""
        self._log_line(
            task,
            f"\n=== {rec.status}{reason} · commits {rec.commits} · "
            f"{rec.duration_seconds or 0:.1f} s ===",
        )


def _add(a: int | None, b: int | None) -> int | None:
    return b if a is None else a + (b or 0)
