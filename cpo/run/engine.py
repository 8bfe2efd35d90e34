"""`cpo run` end to end: set-up (lock, preflight, report, integration branch), the
schedule, and the final word.

Data flows one way: plan (manifest) → preflight → scheduler, whose hooks (cpo.run.hooks)
run tasks (taskrun), merge them and validate waves, each change recorded in the report,
which drives the progress display.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cpo import __version__
from cpo.errors import ExitCode, PreflightError
from cpo.git import MARKER
from cpo.gitmemo import snapshot
from cpo.logfile import log, use_log_file
from cpo.orphans import Adopter
from cpo.proc import ProcessRegistry
from cpo.quickimport import quick_imports
from cpo.run.interrupt import install_interrupt_handlers, restore_handlers
from cpo.run.killedadd import mend_killed_adds
from cpo.run.lock import RunLock
from cpo.run.nextstep import cpo_command, next_step
from cpo.run.options import RunContext, RunOptions, prepare
from cpo.run.preflight import preflight, preflight_notes
from cpo.run.progress import Progress, SilentProgress
from cpo.run.report import Report, TaskRecord, ValidationRecord, WaveRecord, load_report, now_iso
from cpo.run.reportwriter import ReportWriter
from cpo.run.slots import Slots
from cpo.run.states import RunStatus
from cpo.run.worktrees import RunWorktrees, Seen, inside_repo, make_worktrees

if TYPE_CHECKING:
    from cpo.run.hooks import RunHooks
    from cpo.run.resume import ResumePlan

# The scheduling half of the run (hooks, scheduler, task runner, conflicts: ~20 ms of
# imports) is imported by `execute` once the set-up has started adding the worktrees: the
# imports then take the time the first agents wait for the adds anyway, on another core.

_EXIT_CODES = {
    RunStatus.COMPLETED: ExitCode.OK,
    RunStatus.FAILED: ExitCode.FAILED,
    RunStatus.INTERRUPTED: ExitCode.INTERRUPTED,
}


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
    make_hooks: Callable[..., RunHooks] | None = None,
) -> RunResult:
    """Run the plan end to end. Raises CpoError for anything that stops it from starting.

    `make_hooks`: the run's hooks, called as RunHooks is (a plan file's streams bring
    their own, cpo.commands.streamhooks; None: RunHooks)."""
    ctx = prepare(parallel_dir, opts)
    use_log_file(ctx.plan.root / "logs" / "cpo.log")  # made at its first line
    lock = RunLock(ctx.plan.root)
    lock.acquire()
    notes: list[str] = []
    if lock.taken_over:
        notes.append(
            f"took over the run lock of pid {lock.taken_over.pid} (started "
            f"{lock.taken_over.started_at}), which is no longer running"
        )
    registry = ProcessRegistry(grace=opts.grace)
    adopter = Adopter()  # what escapes the agents' groups is re-parented to us
    slots = Slots(ctx.max_concurrent, registry.cancelled)
    registry.when_cancelled(slots.wake)
    progress: Progress | None = None
    writer: ReportWriter | None = None
    worktrees: RunWorktrees | None = None
    restore: dict[int, Any] = {}
    try:
        writer, resume, seen = _set_up(ctx, notes, on_report_write)
        (ctx.plan.root / "logs").mkdir(exist_ok=True)  # past preflight: the run starts
        selection = _selection(ctx, writer.report, resume)
        worktrees = _start(ctx, writer, selection[0], seen)
        with quick_imports():  # see above: while the worktrees are added
            from cpo.run.hooks import RunHooks
            from cpo.run.ready import find_readiness

        ready = find_readiness(ctx.git, ctx.repo, ctx.plan, ctx.settings)
        progress = make_progress(lambda: writer.report)
        hooks = (make_hooks or RunHooks)(ctx, writer, progress, registry, slots, worktrees, ready)
        progress.start()
        stop = threading.Event()
        restore = install_interrupt_handlers(stop, registry, hooks.validation_registry)
        registry.start_watchdog()
        status = hooks.schedule_ended(_schedule(ctx, hooks, selection, stop))
        worktrees.remove_unused()  # no agent runs any more
        worktrees.await_integration()  # whole, even if nothing was merged
        return _finish(ctx, writer, progress, status, notes)
    except BaseException as exc:
        if writer is not None:
            _record_crash(writer, exc, ctx.plan.root)
        raise
    finally:
        if progress is not None:
            progress.stop()
        restore_handlers(restore)
        if registry.live_count():
            registry.terminate_all()
        if worktrees is not None:
            worktrees.stop()  # no git of ours outlives the run
        registry.stop_watchdog()  # it stops what is left with the run's tag
        adopter.finish()  # and what was re-parented to us: nothing outlives the run
        if writer is not None:
            writer.close()  # the final state on disk before another run may take the lock
        lock.release()


def _set_up(
    ctx: RunContext, notes: list[str], on_report_write: Callable[[str], None] | None
) -> tuple[ReportWriter, ResumePlan | None, Seen | None]:
    """Check the run can start; its report (not written yet), what it resumes, and git's
    lists as the checks saw them (a first run's: cpo.run.worktrees.Seen)."""
    plan, opts = ctx.plan, ctx.opts
    previous = load_report(plan.root)
    with snapshot(ctx.git):  # nothing changes the repository until the checks are done
        problems = preflight(ctx)
        if problems:
            raise PreflightError.of(problems)
        notes.extend(preflight_notes(ctx))
        # Only a first run's: resuming may mend worktrees and branches (plan_resume).
        seen = None if _continuing(opts) else Seen.now(ctx.git)
    notes.extend(ctx.settings.warnings)
    report = new_report(ctx, opts)
    resume = None
    if _continuing(opts):
        from cpo.run.resume import plan_resume  # only then (and its conflict checks)

        resume = plan_resume(ctx, previous, report)
        notes.extend(resume.notes)
    writer = ReportWriter(
        report,
        plan.root,
        plan.root / "manifest.json" if plan.manifest_style != "none" else None,
        on_write=on_report_write,
    )
    return writer, resume, seen


def _start(
    ctx: RunContext, writer: ReportWriter, selected: set[str], seen: Seen | None
) -> RunWorktrees:
    """Make the integration branch and every worktree the run needs, before any agent
    starts (cpo.run.worktrees); write the report."""
    plan = ctx.plan
    if not writer.path.exists():
        # A first run's report is written before git is touched: after a kill at any later
        # step --resume finds it, and so owns the branches and worktrees this run made. (An
        # earlier run's report already does; it stays as it is until the set-up is done.)
        writer.save()
    with writer.update() as report:
        fresh_integration = False
        if not ctx.opts.no_integration:
            fresh_integration, made_at = _ensure_integration(ctx, seen)
            report.integration_commit = made_at or ctx.git.rev(plan.integration_branch)
        else:
            ctx.git.exclude_pattern(f"/{MARKER}")
    base = report.integration_commit or ctx.base_commit
    # Once each: the tasks of a plan file's stream share one worktree and branch. With an
    # executor other than local, agents work in clones elsewhere: no worktree here.
    here = ctx.executor is None
    wanted = list(
        dict.fromkeys(
            (ctx.worktree(t.id), t.branch)
            for t in plan.ordered_tasks()
            if t.id in selected and here
        )
    )
    worktrees = make_worktrees(
        ctx.git, wanted, base, inside_repo(plan.root, ctx.repo), background=True, seen=seen
    )
    if fresh_integration:
        worktrees.check_out_integration(ctx.integration_worktree)
    warmable = [
        ctx.worktree(t.id)
        for t in plan.ordered_tasks()
        if t.id in selected and here and t.sparse is None and not t.worktree
    ]
    worktrees.warm(warmable, base, ahead=2 * ctx.max_concurrent)
    log.info(
        "run %s started: %d tasks, concurrency %d",
        plan.spec_id,
        len(plan.tasks),
        ctx.max_concurrent,
    )
    return worktrees


def _schedule(
    ctx: RunContext,
    hooks: RunHooks,
    selection: tuple[set[str], set[str], set[int]],
    stop: threading.Event,
) -> RunStatus:
    from cpo.run.scheduler import run_schedule  # imported by then (hooks): a lookup

    selected, done, validated = selection
    result = run_schedule(
        ctx.plan,
        hooks,
        # Twice as many tasks in hand as agent slots: the extra ones prepare their
        # worktrees (and the finished ones do their bookkeeping) while agents work.
        max_concurrent=2 * ctx.max_concurrent,
        mode=ctx.opts.schedule,
        fail_fast=ctx.fail_fast,
        selected=selected,
        done=done,
        validated=validated,
        stop=stop,
    )
    return result.status


def _finish(
    ctx: RunContext,
    writer: ReportWriter,
    progress: Progress,
    status: RunStatus,
    notes: list[str],
) -> RunResult:
    """Record how the run ended and what to do next."""
    with writer.update() as report:
        report.status = status
        report.finished_at = now_iso()
        report.integration_commit = (
            ctx.git.rev(ctx.plan.integration_branch) if not ctx.opts.no_integration else None
        )
        report.next_step = next_step(report, ctx.plan.root)
    progress.finished(status)
    return RunResult(report, _EXIT_CODES[status], notes)


def _record_crash(writer: ReportWriter, exc: BaseException, parallel_dir: Path) -> None:
    """A bug or a Ctrl-C during set-up: the report must not keep saying "running".

    Before this run's first write the report on disk is the earlier run's: it stays as it
    was (a resume that could not start must not erase what the run it continues did).
    """
    if writer.report.status != RunStatus.RUNNING or not writer.written:
        return
    interrupted = isinstance(exc, KeyboardInterrupt)
    with writer.update() as report:
        report.status = RunStatus.INTERRUPTED if interrupted else RunStatus.FAILED
        report.error = None if interrupted else f"{type(exc).__name__}: {exc}"
        report.finished_at = now_iso()
        report.next_step = "continue with: " + cpo_command("run", parallel_dir, "--resume")


def new_report(ctx: RunContext, opts: RunOptions) -> Report:
    plan = ctx.plan
    options: dict[str, Any] = {
        k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()
    }
    options["max_concurrent"] = ctx.max_concurrent
    options["fail_fast"] = ctx.fail_fast
    options["skip"] = list(opts.skip)
    options["branch_names"] = plan.branch_names
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
                worktree=str(ctx.worktree(t.id)),
                content_hash=t.content_hash,
                agent=t.agent,
            )
            for t in plan.ordered_tasks()
        },
    )


def _ensure_integration(ctx: RunContext, seen: Seen | None) -> tuple[bool, str | None]:
    """The integration branch and worktree, made or mended: whether the worktree is new
    and still to be checked out (RunWorktrees.check_out_integration), and the branch's
    commit if this made it. `seen`: git's lists as the set-up saw them, if any."""
    git, branch, path = ctx.git, ctx.plan.integration_branch, ctx.integration_worktree
    git.exclude_pattern(f"/{MARKER}")
    made_at = None
    exists = branch in seen.branches if seen is not None else git.branch_exists(branch)
    if not exists:
        git.create_branch(branch, ctx.base_commit)  # refuses if one was made meanwhile
        made_at = ctx.base_commit
    # A kill cut its `worktree add` short (cpo.run.killedadd): mended, then listed again.
    mended = mend_killed_adds(git, [path])
    registered = seen.worktrees if seen is not None and not mended else git.worktrees()
    if not path.is_dir() or path.resolve() not in registered:
        if path.resolve() in registered or branch in registered.values():
            git.prune_worktrees()  # a folder was deleted by hand: its worktree goes
        git.add_worktree(path, branch, checkout=False)
        return True, made_at
    # A kill between `worktree add --no-checkout` and its checkout left it empty:
    # every merge into it would fail.
    git.complete_checkout(path)
    if git.ok("rev-parse", "-q", "--verify", "MERGE_HEAD", cwd=path):
        # cpo died in the middle of a merge: undo it; the report still has it unmerged.
        git.run("merge", "--abort", cwd=path)
    return False, made_at


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
