"""The scheduler's hooks for one `cpo run`, and the task runner's view of the run.

The scheduler decides when; these hooks do: launch a task (a `Launch` handed to the task
runner), merge it into the integration branch, validate a wave, and record each change in
the report, which drives the progress display.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import replace
from typing import Literal

from cpo.git import MergeResult
from cpo.plan.model import Plan, TaskSpec, WaveSpec
from cpo.proc import ProcessRegistry
from cpo.run.agentrun import TaskSettings
from cpo.run.conflicts import Conflicts
from cpo.run.handoff import DiffStats, handed_over
from cpo.run.options import RunContext, task_settings
from cpo.run.priority import launch_ranks
from cpo.run.progress import Progress
from cpo.run.ready import Readied, Readiness, TaskPrep, ready_for_validation
from cpo.run.remote import remote_attempts
from cpo.run.repair import RepairEnv, repair_wave
from cpo.run.report import Report, now_iso
from cpo.run.reportwriter import ReportWriter
from cpo.run.scheduler import RERUN, TaskOutcome
from cpo.run.scopecheck import out_of_scope, scope_error
from cpo.run.slots import Slots
from cpo.run.states import RunStatus, TaskStatus, WaveStatus
from cpo.run.taskenv import RunEnv, secret_candidates
from cpo.run.taskrun import Launch, RunnerEnv, TaskRunner
from cpo.run.validation import ValidationResult, run_validation, validation_timeout
from cpo.run.worktrees import RunWorktrees
from cpo.secrets import Masker


class RunHooks:
    """The scheduler's hooks (cpo.run.scheduler.Hooks) and the task runner's callbacks
    (cpo.run.taskrun.RunnerCallbacks) for one run."""

    def __init__(
        self,
        ctx: RunContext,
        writer: ReportWriter,
        progress: Progress,
        registry: ProcessRegistry,
        slots: Slots,
        worktrees: RunWorktrees | None = None,
        ready: Readiness | None = None,
    ) -> None:
        self.ctx = ctx
        self.writer = writer
        self.progress = progress
        self.registry = registry
        self.slots = slots
        # Stopped apart from the agents, watched by the same watchdog.
        self.validation_registry = registry.sibling()
        self.masker = Masker(secret_candidates(ctx.plan))
        self.run_env = RunEnv.of(ctx.plan, integration=not ctx.opts.no_integration)
        self.integration = ctx.integration_worktree
        self.worktrees = worktrees or RunWorktrees(ctx.git)
        self.integration_head: str | None = None
        self.wave_base: dict[int, str] = {}
        self.logs_dir = ctx.plan.root / "logs"
        self.dependents = ctx.plan.dependents()
        self.ranks: dict[str, int] = {}
        if ctx.opts.schedule == "dag" and not ctx.opts.no_integration:
            # A finished task's agent slot is kept for the task its merge unblocks when
            # that one outranks every waiting task (cpo.run.slots).
            self.ranks = launch_ranks(ctx.plan, "dag")
        self._launches: dict[str, Launch] = {}
        self._diff_stats: DiffStats = {}  # each dependency's, for all its dependents
        env = RunnerEnv(
            git=ctx.git,
            writer=writer,
            parallel_dir=ctx.plan.root,
            worktrees=ctx.layout.worktrees,
            registry=registry,
            slots=slots,
            masker=self.masker,
            fail_fast=ctx.fail_fast,
            prepared=self.worktrees,
            prep=TaskPrep(
                ready or Readiness(ctx.repo), self.run_env, registry, ctx.ports, self._readied
            ),
            # An executor other than local: attempts through the git remote.
            attempts=None
            if ctx.executor is None
            else remote_attempts(ctx.executor, ctx, writer, registry, self, self.masker),
        )
        self.ready = ready
        self._integration_ready = False
        self.runner = TaskRunner(env, self)
        integration_env = self.run_env.for_integration(self.integration)
        self.conflicts = Conflicts(
            ctx, writer, progress, self.masker, self.runner.agents.inner, integration_env, slots
        )

    def _readied(self, task: TaskSpec, attempt_no: int, readied: Readied) -> None:
        """The files, setup commands and ports of a task's attempt, into the report."""
        with self.writer.update_task(task.id) as rec:
            for attempt in rec.attempts:
                if attempt.number == attempt_no:
                    attempt.included = list(readied.included)
                    attempt.setup = list(readied.setup)
                    attempt.ports = list(readied.ports)

    # -- what the task runner asks --------------------------------------------------
    def settings_for(self, task: TaskSpec) -> TaskSettings:
        return task_settings(self.ctx, task)

    def start_point(self, task: TaskSpec) -> str:
        """Where a task branches from: the base with --no-integration; with waves, the
        integration head when its wave began (its wave-mates' merges, which happen while
        the wave runs, are not in it); with a DAG, the head once its dependencies merged."""
        if self.ctx.opts.no_integration:
            return self.ctx.base_commit
        if self.ctx.opts.schedule == "waves" and task.wave in self.wave_base:
            return self.wave_base[task.wave]
        return self._integration_head()

    def task_started(self, task: TaskSpec) -> None:
        self.progress.task_started(self.writer.report.tasks[task.id])

    def task_action(self, task: TaskSpec, action: str) -> None:
        self.writer.note_action(task.id, action)
        self.progress.task_action(self.writer.report.tasks[task.id])

    def successor_rank(self, task: TaskSpec) -> int | None:
        if not self.ranks:
            return None
        with self.writer.reading() as report:
            return successor_rank(self.ctx.plan, report, self.dependents, self.ranks, task)

    def _integration_head(self) -> str:
        # Kept in memory: only merge_task moves the branch, on the scheduler's thread,
        # before it launches anything that depends on the merge.
        if self.integration_head is None:
            self.integration_head = self.ctx.git.rev(self.ctx.plan.integration_branch)
        assert self.integration_head is not None
        return self.integration_head

    # -- the scheduler's hooks ------------------------------------------------------
    def task_launched(self, task: TaskSpec, rank: int) -> None:
        policy = self.ctx.policy
        if task.deps and policy.handoff and not self.ctx.opts.no_integration:
            with self.writer.reading() as report:
                limit, stats = policy.handoff_limit, self._diff_stats
                task = handed_over(self.ctx.git, report, task, limit, stats)
        # After a conflict its prompt says what it must now build on (cpo.run.conflicts).
        task = self.conflicts.for_launch(task)
        self._launches[task.id] = Launch(task, rank, self.slots.ticket(rank))

    def run_task(self, task: TaskSpec) -> TaskOutcome:
        outcome = self.runner.run(self._launches.pop(task.id))
        if outcome.ok:
            outcome = self._check_scope(task, outcome)
        if outcome.ok:
            self.conflicts.predict(task)  # before its merge, which is on another thread
        rec = self.writer.report.tasks[task.id]
        if rec.status != TaskStatus.PENDING:  # never started: the scheduler says what it is
            self.progress.task_finished(rec)
        return outcome

    def _check_scope(self, task: TaskSpec, outcome: TaskOutcome) -> TaskOutcome:
        """Files changed outside the task's scope: flagged; a failure with --strict-scope."""
        strict = self.ctx.policy.strict_scope
        with self.writer.update_task(task.id, durable=strict) as rec:
            rec.out_of_scope = out_of_scope(task.scope, rec.files_changed)
            if not (strict and rec.out_of_scope):
                return outcome
            rec.status, rec.reason = TaskStatus.FAILED, "out_of_scope"
            rec.error = scope_error(rec.out_of_scope)
        with (self.logs_dir / f"{task.id}.log").open("a", encoding="utf-8") as fh:
            fh.write(f"[cpo] failed: {rec.error}\n")
        return TaskOutcome(ok=False, reason="out_of_scope")

    def merge_task(self, task: TaskSpec) -> bool | Literal["rerun"]:
        if self.ctx.opts.no_integration:
            return True
        self.worktrees.await_integration()  # checked out in the background (set-up)
        result = self.conflicts.merge(task)  # with what --on-conflict does on a conflict
        if isinstance(result, str):  # RERUN: it runs again before its merge
            self._unreserve_dependents(task)
            return RERUN
        if not result.ok:
            self._log_merge_failure(task, result)
        with self.writer.update_task(task.id) as rec:
            if result.ok:
                rec.merged, rec.merge_commit = True, result.commit
                self.writer.report.integration_commit = result.commit
                self.integration_head = result.commit
            else:
                rec.status, rec.reason, rec.error = TaskStatus.FAILED, *self._merge_failure(result)
                rec.conflict_files = list(result.conflict_files)
        if not result.ok:
            self.progress.task_finished(rec)
            self._unreserve_dependents(task)
        return result.ok

    def _unreserve_dependents(self, task: TaskSpec) -> None:
        for dep in self.dependents[task.id]:  # they will not come for a kept slot (yet)
            if dep in self.ranks:
                self.slots.unreserve(self.ranks[dep])

    def _merge_failure(self, result: MergeResult) -> tuple[str, str]:
        """(reason, error) of a merge into the integration branch that did not happen."""
        where = f"the merge into {self.ctx.plan.integration_branch}"
        if result.failure == "hook_rejected":
            output = " | ".join(ln for ln in result.message.splitlines() if ln.strip())
            return "hook_rejected", self.masker.mask(
                f"a git hook refused {where} (pre-merge-commit or commit-msg): {output[-1000:]}"
            )
        if result.failure == "untracked":
            return "untracked_files", (
                f"untracked files in {self.integration} would be overwritten by {where}: "
                f"{', '.join(result.conflict_files) or result.message}; move them away, "
                "then retry the task (cpo run --retry-failed)"
            )
        return "conflict", "merge conflict in " + (
            ", ".join(result.conflict_files) or result.message
        )

    def _log_merge_failure(self, task: TaskSpec, result: MergeResult) -> None:
        """The whole of git's answer (a hook's output, say) in the task's log."""
        with (self.logs_dir / f"{task.id}.log").open("a", encoding="utf-8") as fh:
            fh.write(
                f"[cpo] merge into {self.ctx.plan.integration_branch} failed "
                f"({result.failure}):\n{self.masker.mask(result.message)}\n"
            )

    def validate_wave(self, wave: WaveSpec) -> bool:
        if self.ctx.opts.no_integration:
            with self.writer.update_wave(wave.number) as rec:
                rec.note = "validation not run: --no-integration has no merged tree"
            return True
        self.worktrees.await_integration()
        failed = self._ready_integration()
        if failed is not None:
            why = f"[cpo] validation not run: the integration worktree's {failed}"
            with self.writer.update_wave(wave.number) as rec:
                rec.validation_output_tail = f"{why}; see logs/integration-setup.log"
            return False
        result = self._validate(wave)
        if result.ok or not self.ctx.policy.repair or self.registry.cancelled.is_set():
            return result.ok
        fixed = repair_wave(
            self._repair_env(), wave, result, lambda: self._validate(wave), self.ctx.policy.repair
        )
        if fixed:  # the repair's commit is the integration head now
            self.integration_head = self.ctx.git.rev(self.ctx.plan.integration_branch)
        return fixed

    def _validate(self, wave: WaveSpec) -> ValidationResult:
        result = run_validation(
            wave.validation,
            cwd=self.integration,
            timeout=validation_timeout(self.ctx.settings),
            registry=self.validation_registry,
            base_env=self.run_env.for_integration(self.integration),
        )
        tail = self.masker.mask(result.output_tail)
        with self.writer.update_wave(wave.number) as rec:
            rec.validation_exit_code = result.exit_code
            rec.validation_duration_seconds = round(result.duration, 3)
            rec.validation_output_tail = tail
        log = self.logs_dir / f"wave-{wave.number}-validation.log"
        with log.open("a", encoding="utf-8") as fh:  # a repair's validation adds to it
            fh.write(self.masker.mask(result.log))
        return replace(result, output_tail=tail)

    def _repair_env(self) -> RepairEnv:
        # The run's own agent settings: a task that names nothing of its own gets them.
        blank = TaskSpec(id="repair", wave=0, prompt="", prompt_source="")
        return RepairEnv(
            git=self.ctx.git,
            # Its actions are in its log; the report's last_action is a task's.
            agents=replace(self.runner.agents.inner, on_action=lambda _task, _action: None),
            writer=self.writer,
            worktree=self.integration,
            branch=self.ctx.plan.integration_branch,
            settings=task_settings(self.ctx, blank),
            env=self.run_env.for_integration(self.integration),
            slots=self.slots,
            shown=self.progress.wave_repair,
        )

    def _ready_integration(self) -> str | None:
        """Before the run's first validation: the included files and the spec's setup in
        the integration worktree, so that validations run in a ready tree (once a run)."""
        if self.ready is None or self._integration_ready:
            return None
        self._integration_ready = True
        return ready_for_validation(
            self.ready,
            self.integration,
            env=self.run_env.for_integration(self.integration),
            timeout=validation_timeout(self.ctx.settings),
            registry=self.validation_registry,
            log=self.logs_dir / "integration-setup.log",
            masker=self.masker,
        )

    def task_skipped(self, task: TaskSpec, reason: str) -> None:
        with self.writer.update_task(task.id) as rec:
            rec.status, rec.reason = TaskStatus.SKIPPED, reason
        self.progress.task_finished(rec)

    def wave_changed(self, wave: WaveSpec, state: WaveStatus, note: str | None) -> None:
        if state == WaveStatus.VALIDATING and self.ctx.opts.no_integration:
            return  # no merged tree, nothing validated (validate_wave notes why)
        # Written at once: a wave changes state a few times a run, and what `cpo status`
        # shows while a long validation runs must already say so.
        with self.writer.update_wave(wave.number, durable=True) as rec:
            rec.status = state
            if state == WaveStatus.RUNNING and rec.started_at is None:
                rec.started_at = now_iso()
            if state == WaveStatus.RUNNING and not self.ctx.opts.no_integration:
                self.wave_base.setdefault(wave.number, self._integration_head())
            if state in (WaveStatus.COMPLETED, WaveStatus.FAILED):
                rec.finished_at = now_iso()
                if note:
                    rec.note = note
            tasks = [self.writer.report.tasks[t] for t in wave.task_ids]
        done = sum(
            t.status == TaskStatus.COMPLETED and (t.merged or self.ctx.opts.no_integration)
            for t in tasks
        )
        self.progress.wave_changed(wave.number, state, done, len(tasks))

    def stop_running(self) -> None:
        threading.Thread(target=self.registry.terminate_all, daemon=True).start()

    def settle(self, rerun: bool) -> Collection[str]:
        """Merges made once nothing more runs: none here, every task merges as it ends
        (a plan file's streams merge here, cpo.commands.streamhooks)."""
        return ()

    def schedule_ended(self, status: RunStatus) -> RunStatus:
        """Called once the schedule is over, before the run's end is recorded; the run's
        status (a plan file's streams merge here, cpo.commands.streamhooks)."""
        return status


def successor_rank(
    plan: Plan,
    report: Report,
    dependents: dict[str, list[str]],
    ranks: dict[str, int],
    task: TaskSpec,
) -> int | None:
    """The best rank among pending tasks whose only unmerged dependency is `task`.

    None while a wave validates: merges wait for it, so the slot would idle.
    """
    if any(w.status == WaveStatus.VALIDATING for w in report.waves):
        return None
    tasks = report.tasks
    ready_after = [
        d
        for d in dependents[task.id]
        if tasks[d].status == TaskStatus.PENDING
        and all(x == task.id or tasks[x].merged for x in plan.tasks[d].deps)
    ]
    return min((ranks[d] for d in ready_after), default=None)
