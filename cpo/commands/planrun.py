"""`cpo run PLAN.md`: run a plan file's work streams with the run engine, writing each
task's status back into the plan as it starts, completes or fails.

The plan becomes cpo's `Plan` (cpo.planfile.translate: each stream a chain of tasks on
one branch and worktree) run with the DAG schedule and the streams' own hooks
(cpo.commands.streamhooks); streams not chosen with `--stream` are skipped. Running a
plan that ran before continues that run (as `--resume`). The status write-back watches
the run's progress events, so the engine knows nothing of plan files beyond loading one.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path

from cpo.commands.streamhooks import StreamHooks
from cpo.errors import ExitCode, UsageError
from cpo.planfile.doc import PlanDoc
from cpo.planfile.load import load_plan_file, read_plan_doc
from cpo.planfile.paths import output_dir
from cpo.planfile.translate import DONE, plan_streams, spec_id_of
from cpo.planfile.writer import PlanWriter
from cpo.run import engine
from cpo.run.options import RunOptions
from cpo.run.progress import Progress
from cpo.run.report import REPORT_FILE, Report, TaskRecord
from cpo.run.states import RunStatus, TaskStatus
from cpo.suggest import did_you_mean

ProgressMaker = Callable[[Callable[[], Report]], Progress]


def task_streams(path: Path) -> dict[str, str]:
    """Task id -> its stream, in table order."""
    return {row.task_id: row.stream for row in read_plan_doc(path.resolve()).rows}


def plan_options(path: Path, opts: RunOptions, streams: tuple[str, ...]) -> RunOptions:
    """`opts` for running the plan file: the DAG schedule; the tasks of streams not
    chosen skipped. Raises PlanError for a plan with problems, UsageError for a stream
    the plan does not have. A plan run before is continued (`--resume`)."""
    plan = load_plan_file(path, opts.validate)
    of = task_streams(path)
    known = list(dict.fromkeys(of.values()))
    for name in streams:
        if name not in known:
            raise UsageError(
                f"--stream {name}: the plan has streams {', '.join(known)}"
                + did_you_mean(name, known)
            )
    skip = tuple(t for t in plan.tasks if streams and of[t] not in streams)
    # The plan's table says what is done; an earlier run's report and branches hold the
    # rest (the streams' work, start points): running the plan again continues that run.
    again = not opts.continuing and (output_dir(path.resolve()) / REPORT_FILE).is_file()
    return replace(opts, schedule="dag", skip=(*opts.skip, *skip), resume=opts.resume or again)


class StatusProgress:
    """The run's progress display, plus each task's status written into the plan."""

    def __init__(
        self,
        inner: Progress,
        writer: PlanWriter,
        doc: PlanDoc,
        get_report: Callable[[], Report] | None = None,
    ) -> None:
        self.inner = inner
        self.writer = writer
        self.before = {row.task_id: row.status for row in doc.rows}
        self.get_report = get_report

    def _set(self, task_id: str, status: str, *, dated: bool = False) -> None:
        if not self.writer.set(task_id, status, dated=dated) and _can_stop_self():
            # Edited by hand: stop the run as Ctrl-C would (the engine's handler), so
            # that nothing more is done on a plan the user is changing.
            os.kill(os.getpid(), signal.SIGTERM)

    def start(self) -> None:
        if self.get_report is not None:
            # Counted as done by --resume without running (merged by hand after its
            # merge failed): complete, whatever the plan said when the run started.
            for rec in self.get_report().tasks.values():
                old = self.before.get(rec.id, DONE)
                if rec.status == TaskStatus.COMPLETED and rec.merged and old.upper() != DONE:
                    self._set(rec.id, "TASK:COMPLETE", dated=True)
        self.inner.start()

    def task_started(self, rec: TaskRecord) -> None:
        self._set(rec.id, "TASK:IN_PROGRESS")
        self.inner.task_started(rec)

    def task_action(self, rec: TaskRecord) -> None:
        self.inner.task_action(rec)

    def task_finished(self, rec: TaskRecord) -> None:
        if rec.status == TaskStatus.COMPLETED:
            self._set(rec.id, "TASK:COMPLETE", dated=True)
        elif rec.status == TaskStatus.FAILED:
            self._set(rec.id, "TASK:FAILED")
        elif rec.status == TaskStatus.INTERRUPTED and rec.id in self.before:
            self._set(rec.id, self.before[rec.id])
        self.inner.task_finished(rec)

    def task_event(self, rec: TaskRecord, words: str) -> None:
        self.inner.task_event(rec, words)

    def reopened(self, task_id: str) -> None:
        """A completed task to run again (its stream's merge conflicted): not complete."""
        self._set(task_id, self.before[task_id])

    def wave_changed(self, number: int, status: object, done: int, total: int) -> None:
        self.inner.wave_changed(number, status, done, total)  # type: ignore[arg-type]

    def wave_repair(self, number: int, attempt: int, total: int, outcome: str | None) -> None:
        self.inner.wave_repair(number, attempt, total, outcome)

    def finished(self, status: RunStatus) -> None:
        self.inner.finished(status)

    def stop(self) -> None:
        self.inner.stop()


def _can_stop_self() -> bool:
    """Whether the engine's interrupt handler is installed (it is only in the main thread)."""
    return callable(signal.getsignal(signal.SIGTERM))


def run_plan_file(
    path: Path, opts: RunOptions, make_progress: ProgressMaker, streams: tuple[str, ...] = ()
) -> engine.RunResult:
    """Run the plan file (only the `streams` named, if any); its statuses are written
    back as tasks start and end."""
    path = path.resolve()
    doc = read_plan_doc(path)
    output_dir(path).mkdir(exist_ok=True)
    writer = PlanWriter(path)

    shown: list[StatusProgress] = []

    def make(get_report: Callable[[], Report]) -> Progress:
        shown.append(StatusProgress(make_progress(get_report), writer, doc, get_report))
        return shown[-1]

    def reopened(task_id: str) -> None:
        shown[-1].reopened(task_id)

    info = plan_streams(doc, spec_id_of(path))
    hooks = partial(StreamHooks, info, streams, reopened=reopened)
    result = engine.execute(path, opts, make, make_hooks=hooks)
    if writer.edited is not None:
        result.notes.extend(writer.edited.lines())
        if result.exit_code == ExitCode.OK:
            result.exit_code = ExitCode.FAILED
    return result


def stream_lines(path: Path, streams: tuple[str, ...] = ()) -> list[str]:
    """What `--dry-run` says of the streams: each one's branch and tasks still to do, and
    the order in which they merge into the integration branch."""
    path = path.resolve()
    doc = read_plan_doc(path)
    info = plan_streams(doc, spec_id_of(path))
    todo = {r.task_id for r in doc.rows if r.status.upper() != DONE}
    chosen = [s for s in info.order if not streams or s in streams]
    lines = [
        f"stream {s} on {info.branches[s]}: "
        + (", ".join(t for t in info.tasks(s) if t in todo) or "nothing to do")
        for s in chosen
    ]
    return [*lines, "streams merge into the integration branch in this order: " + ", ".join(chosen)]


def stream_labels(path: Path) -> Mapping[str, str]:
    """What `[PROGRESS]` lines add for each task: its stream."""
    return {t: f"stream={s}" for t, s in task_streams(path).items()}
