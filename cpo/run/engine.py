"""`cpo run`: preflight, the integration branch, the scheduler's hooks, and the final word.

Data flows one way: plan (manifest) → preflight → scheduler, whose hooks run tasks
(taskrun), merge them and validate waves (worktree, validation), each change recorded in
the report, which drives the progress display.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from cpo import __version__
from cpo.errors import ExitCode, PreflightError
from cpo.git import MARKER
from cpo.logfile import log, use_log_file
from cpo.plan.model import TaskSpec, WaveSpec
from cpo.proc import ProcessRegistry
from cpo.run.interrupt import install_interrupt_handlers, restore_handlers
from cpo.run.lock import RunLock
from cpo.run.options import RunContext, RunOptions, prepare, task_settings
from cpo.run.preflight import preflight, unsupported_options
from cpo.run.priority import launch_ranks
from cpo.run.progress import Progress, SilentProgress
from cpo.run.report import (
    Report,
    ReportWriter,
    TaskRecord,
    ValidationRecord,
    WaveRecord,
    load_report,
    now_iso,
)
from cpo.run.resume import ResumePlan, plan_resume
from cpo.run.scheduler import TaskOutcome, WaveState, run_schedule
from cpo.run.taskrun import TaskRunner
from cpo.run.validation import run_validation
from cpo.secrets import Masker

Output = Literal["live", "plain", "json", "quiet"]


# -- running --------------------------------------------------------------------------------
class Engine:
    """The scheduler's hooks for one run, and the run's shared state."""

    def __init__(
        self,
        ctx: RunContext,
        writer: ReportWriter,
        progress: Progress,
        registry: ProcessRegistry,
    ) -> None:
        self.ctx = ctx
        self.writer = writer
        self.progress = progress
        self.registry = registry
        self.validation_registry = ProcessRegistry(grace=registry.grace)
        self.integration_head: str | None = None
        self.wave_base: dict[int, str] = {}
        self.logs_dir = ctx.plan.root / "logs"
        integ = ctx.integration_worktree
        self.runner = TaskRunner(
            git=ctx.git,
            writer=writer,
            parallel_dir=ctx.plan.root,
            logs_dir=self.logs_dir,
            workspace_root=ctx.workspace_root,
            registry=registry,
            settings_for=lambda t: task_settings(ctx, t),
            start_point=self._start_point,
            on_action=self._on_action,
            on_started=lambda t: self.progress.task_started(writer.report.tasks[t.id]),
            masker=Masker(os.environ),
            fail_fast=ctx.fail_fast,
        )
        self.integration = integ
        self.dependents = ctx.plan.dependents()
        self.ranks: dict[str, int] = {}
        if ctx.opts.schedule == "dag" and not ctx.opts.no_integration:
            # A finished task's agent slot is kept for the task its merge unblocks when
            # that one outranks every waiting task (cpo.run.slots).
            self.ranks = launch_ranks(ctx.plan, "dag")
            self.runner.successor_rank = self._successor_rank

    def _successor_rank(self, task: TaskSpec) -> int | None:
        """The best rank among pending tasks whose only unmerged dependency is `task`.

        None while a wave validates: merges wait for it, so the slot would idle.
        """
        plan, tasks = self.ctx.plan, self.writer.report.tasks
        with self.writer.lock:
            if any(w.status == "validating" for w in self.writer.report.waves):
                return None
            ready_after = [
                d
                for d in self.dependents[task.id]
                if tasks[d].status == "pending"
                and all(x == task.id or tasks[x].merged for x in plan.tasks[d].deps)
            ]
        return min((self.ranks[d] for d in ready_after), default=None)

    def _start_point(self, task: TaskSpec) -> str:
        """Where a task branches from: the base with --no-integration; with waves, the
        integration head when its wave began (its wave-mates' merges, which happen while
        the wave runs, are not in it); with a DAG, the head once its dependencies merged."""
        if self.ctx.opts.no_integration:
            return self.ctx.base_commit
        if self.ctx.opts.schedule == "waves" and task.wave in self.wave_base:
            return self.wave_base[task.wave]
        return self._integration_head()

    def _integration_head(self) -> str:
        # Kept in memory: only merge_task moves the branch, on the scheduler's thread,
        # before it launches anything that depends on the merge.
        if self.integration_head is None:
            self.integration_head = self.ctx.git.rev(self.ctx.plan.integration_branch)
        assert self.integration_head is not None
        return self.integration_head

    def _on_action(self, task: TaskSpec, action: str) -> None:
        self.writer.note_action(task.id, action)
        self.progress.task_action(self.writer.report.tasks[task.id])

    # hooks -------------------------------------------------------------------------
    def task_launched(self, task: TaskSpec, rank: int) -> None:
        self.runner.ranks[task.id] = rank
        self.runner.tickets[task.id] = self.registry.slots.ticket(rank)

    def run_task(self, task: TaskSpec) -> TaskOutcome:
        outcome = self.runner.run(task)
        self.progress.task_finished(self.writer.report.tasks[task.id])
        return outcome

    def merge_task(self, task: TaskSpec) -> bool:
        rec = self.writer.report.tasks[task.id]
        if self.ctx.opts.no_integration:
            return True
        result = self.ctx.git.merge(
            self.integration, task.branch, f"Merge {task.branch} ({task.id}, wave {task.wave})"
        )
        with self.writer.lock:
            if result.ok:
                rec.merged, rec.merge_commit = True, result.commit
                self.writer.report.integration_commit = result.commit
                self.integration_head = result.commit
            else:
                rec.status, rec.reason = "failed", "conflict"
                rec.conflict_files = list(result.conflict_files)
                rec.error = "merge conflict in " + (
                    ", ".join(result.conflict_files) or result.message
                )
            self.writer.save()
        if not result.ok:
            self.progress.task_finished(rec)
            for dep in self.dependents[task.id]:  # they will not come for a kept slot
                if dep in self.ranks:
                    self.registry.slots.unreserve(self.ranks[dep])
        return result.ok

    def validate_wave(self, wave: WaveSpec) -> bool:
        if self.ctx.opts.no_integration:
            self._wave_note(wave, "validation not run: --no-integration has no merged tree")
            return True
        result = run_validation(
            wave.validation,
            cwd=self.integration,
            timeout=self.ctx.settings.timeouts.task,
            registry=self.validation_registry,
        )
        tail = self.runner.masker.mask(result.output_tail)
        with self.writer.lock:
            rec = self.writer.report.wave(wave.number)
            rec.validation_exit_code = result.exit_code
            rec.validation_duration_seconds = round(result.duration, 3)
            rec.validation_output_tail = tail
            self.writer.save()
        (self.logs_dir / f"wave-{wave.number}-validation.log").write_text(tail + "\n")
        return result.ok

    def _wave_note(self, wave: WaveSpec, note: str) -> None:
        with self.writer.lock:
            self.writer.report.wave(wave.number).note = note
            self.writer.save()

    def task_skipped(self, task: TaskSpec, reason: str) -> None:
        rec = self.writer.report.tasks[task.id]
        with self.writer.lock:
            rec.status, rec.reason = "skipped", reason
            self.writer.save()
        self.progress.task_finished(rec)

    def wave_changed(self, wave: WaveSpec, state: WaveState, note: str | None) -> None:
        with self.writer.lock:
            rec = self.writer.report.wave(wave.number)
            rec.status = state.value
            if state == WaveState.RUNNING and rec.started_at is None:
                rec.started_at = now_iso()
            if state == WaveState.RUNNING and not self.ctx.opts.no_integration:
                self.wave_base.setdefault(wave.number, self._integration_head())
            if state in (WaveState.COMPLETED, WaveState.FAILED):
                rec.finished_at = now_iso()
                if note:
                    rec.note = note
            self.writer.save()
            tasks = [self.writer.report.tasks[t] for t in wave.task_ids]
        done = sum(
            t.status == "completed" and (t.merged or self.ctx.opts.no_integration) for t in tasks
        )
        self.progress.wave_changed(wave.number, state.value, done, len(tasks))

    def stop_running(self) -> None:
        threading.Thread(target=self.registry.terminate_all, daemon=True).start()


def new_report(ctx: RunContext, opts: RunOptions) -> Report:
    plan = ctx.plan
    options: dict[str, Any] = {
        k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()
    }
    options["max_concurrent"] = ctx.max_concurrent
    options["fail_fast"] = ctx.fail_fast
    options["skip"] = list(opts.skip)
    return Report(
        cpo_version=__version__,
        spec_id=plan.spec_id,
        parallel_dir=str(plan.root),
        started_at=now_iso(),
        pid=os.getpid(),
        options=options,
        repository=str(ctx.repo),
        base_branch=ctx.base_branch,
        base_commit=ctx.base_commit,
        integration_branch=None if opts.no_integration else plan.integration_branch,
        integration_worktree=None if opts.no_integration else str(ctx.integration_worktree),
        workspace_root=str(ctx.workspace_root),
        waves=[
            WaveRecord(
                number=w.number,
                tasks=list(w.task_ids),
                validation=[ValidationRecord(kind=s.kind, source=s.source) for s in w.validation],
            )
            for w in plan.waves
        ],
        tasks={
            t.id: TaskRecord(
                id=t.id,
                wave=t.wave,
                branch=t.branch,
                worktree=str(ctx.workspace_root / t.id),
                content_hash=t.content_hash,
                agent=t.agent,
            )
            for t in plan.ordered_tasks()
        },
    )


def _ensure_integration(ctx: RunContext) -> None:
    git, branch, path = ctx.git, ctx.plan.integration_branch, ctx.integration_worktree
    if not git.branch_exists(branch):
        git.create_branch(branch, ctx.base_commit)
    if not path.is_dir() or path.resolve() not in git.worktrees():
        git.prune_worktrees()  # its folder may have been deleted by hand
        git.add_worktree(path, branch)
    elif git.ok("rev-parse", "-q", "--verify", "MERGE_HEAD", cwd=path):
        # cpo died in the middle of a merge: undo it; the report still has it unmerged.
        git.run("merge", "--abort", cwd=path)
    git.exclude_pattern(f"/{MARKER}")


@dataclass
class RunResult:
    report: Report
    exit_code: ExitCode
    notes: list[str]


def execute(
    parallel_dir: Path,
    opts: RunOptions,
    make_progress: Callable[[Callable[[], Report]], Progress] = lambda _get: SilentProgress(),
    on_report_write: Callable[[str], None] | None = None,
) -> RunResult:
    """Run the plan end to end. Raises CpoError for anything that stops it from starting."""
    ctx = prepare(parallel_dir, opts)
    plan = ctx.plan
    logs = plan.root / "logs"
    logs.mkdir(exist_ok=True)
    use_log_file(logs / "cpo.log")
    lock = RunLock(plan.root)
    lock.acquire()
    notes: list[str] = []
    if lock.taken_over:
        notes.append(
            f"took over the run lock of pid {lock.taken_over.pid} (started "
            f"{lock.taken_over.started_at}), which is no longer running"
        )
    registry = ProcessRegistry(grace=opts.grace, slots=ctx.max_concurrent)
    progress: Progress | None = None
    writer: ReportWriter | None = None
    restore: dict[int, Any] = {}
    try:
        previous = load_report(plan.root)
        problems = preflight(ctx, previous)
        if problems:
            raise PreflightError.of(problems)
        notes.extend(unsupported_options(ctx))
        notes.extend(ctx.settings.warnings)
        report = new_report(ctx, opts)
        resume = plan_resume(ctx, previous, report) if _continuing(opts) else None
        if resume is not None:
            notes.extend(resume.notes)
        writer = ReportWriter(
            report,
            plan.root,
            plan.root / "manifest.json" if plan.manifest_style != "none" else None,
            on_write=on_report_write,
        )
        if not opts.no_integration:
            _ensure_integration(ctx)
            report.integration_commit = ctx.git.rev(plan.integration_branch)
        else:
            ctx.git.exclude_pattern(f"/{MARKER}")
        writer.save()
        log.info(
            "run %s started: %d tasks, concurrency %d",
            plan.spec_id,
            len(plan.tasks),
            ctx.max_concurrent,
        )
        progress = make_progress(lambda: report)
        engine = Engine(ctx, writer, progress, registry)
        progress.start()
        stop = threading.Event()
        restore = install_interrupt_handlers(stop, registry, engine.validation_registry)
        registry.start_watchdog()
        selected, done, validated = _selection(ctx, report, resume)
        result = run_schedule(
            plan,
            engine,
            # Twice as many tasks in hand as agent slots: the extra ones prepare their
            # worktrees (and the finished ones do their bookkeeping) while agents work.
            max_concurrent=2 * ctx.max_concurrent,
            mode=opts.schedule,
            fail_fast=ctx.fail_fast,
            selected=selected,
            done=done,
            validated=validated,
            stop=stop,
        )
        with writer.lock:
            report.status = result.status
            report.finished_at = now_iso()
            report.integration_commit = (
                ctx.git.rev(plan.integration_branch) if not opts.no_integration else None
            )
            report.next_step = next_step(report, plan.root)
            writer.save()
        progress.finished(result.status)
        code = {
            "completed": ExitCode.OK,
            "failed": ExitCode.FAILED,
            "interrupted": ExitCode.INTERRUPTED,
        }[result.status]
        return RunResult(report, code, notes)
    except BaseException as exc:
        # A bug or a Ctrl-C during setup: the report must not keep saying "running".
        if writer is not None and writer.report.status == "running":
            interrupted = isinstance(exc, KeyboardInterrupt)
            with writer.lock:
                writer.report.status = "interrupted" if interrupted else "failed"
                writer.report.error = None if interrupted else f"{type(exc).__name__}: {exc}"
                writer.report.finished_at = now_iso()
                writer.report.next_step = f"continue with: cpo run {plan.root} --resume"
                writer.save()
        raise
    finally:
        if progress is not None:
            progress.stop()
        restore_handlers(restore)
        if registry.live_count():
            registry.terminate_all()
        registry.stop_watchdog()
        lock.release()


def _continuing(opts: RunOptions) -> bool:
    return opts.resume or opts.retry_failed or opts.wave is not None


def _selection(
    ctx: RunContext, report: Report, resume: ResumePlan | None
) -> tuple[set[str], set[str], set[int]]:
    plan, opts = ctx.plan, ctx.opts
    done: set[str] = set(resume.done) if resume else set()
    validated: set[int] = set(resume.validated) if resume else set()
    selected = set(plan.tasks) - done
    if resume is not None and opts.retry_failed:
        selected &= set(resume.retry)
    if opts.wave is not None:
        selected &= set(plan.waves[[w.number for w in plan.waves].index(opts.wave)].task_ids)
    selected -= set(opts.skip)
    return selected, done, validated


def next_step(report: Report, parallel_dir: Path) -> str:
    failed = [t for t in report.tasks.values() if t.status in ("failed", "interrupted")]
    if report.status == "completed":
        return (
            f"review {report.integration_branch} and merge it: cpo integrate {parallel_dir}"
            if report.integration_branch
            else "review the task branches"
        )
    if report.status == "interrupted":
        return f"continue with: cpo run {parallel_dir} --resume"
    if failed:
        first = failed[0]
        return (
            f"see {first.log or 'logs/'} for {first.id} ({first.reason}); fix the cause, then "
            f"cpo run {parallel_dir} --retry-failed"
        )
    bad_wave = next((w for w in report.waves if w.status == "failed"), None)
    if bad_wave is not None:
        return (
            f"wave {bad_wave.number} validation failed "
            f"(see logs/wave-{bad_wave.number}-validation.log);"
            f" fix it on {report.integration_branch}, then cpo run {parallel_dir} --resume"
        )
    return f"see {parallel_dir / 'report.json'}"
