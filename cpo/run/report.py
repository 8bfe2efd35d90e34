"""report.json — the run's record and live status — and the manifest's `execution` block.

The report is saved a moment after each state change (changes made meanwhile share one
save): the changed records are appended to report.journal, and report.json is rewritten
atomically (temp file + rename) now and then (cpo.run.journal). A reader (`load_report`:
`cpo status`, `--resume`) never sees half a file, and a crash leaves a recent complete
state behind.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cpo.errors import UsageError
from cpo.logfile import log
from cpo.run.execblock import write_execution_block
from cpo.run.journal import JOURNAL_FILE as JOURNAL_FILE  # its readers' one import
from cpo.run.journal import Journal, atomic_write, current, entry, run_id
from cpo.run.states import RunStatus, TaskStatus, WaveStatus
from cpo.secrets import Masker

REPORT_VERSION: Literal[1] = 1
REPORT_FILE = "report.json"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class _Model(BaseModel):
    # Reports written by a newer cpo may carry more fields; keep reading them.
    model_config = ConfigDict(extra="allow", validate_assignment=False)


class SetupStep(_Model):
    """One setup command run in the task's worktree before its agent (README, setup)."""

    command: str
    exit_code: int | None = Field(description="None: it timed out")
    duration_s: float


class Attempt(_Model):
    number: int
    started_at: str
    finished_at: str | None = None
    status: TaskStatus = TaskStatus.RUNNING
    reason: str | None = None
    exit_code: int | None = None
    error: str | None = None
    session_id: str | None = None
    cost_usd: float | None = None
    start_point: str | None = None
    head: str | None = None
    saved_branch: str | None = Field(
        default=None, description="Branch keeping this attempt's work when a retry reset it"
    )
    kept_branch: str | None = Field(
        default=None,
        description="Branch cpo made to keep the agent's HEAD when it could not become the "
        "task's work (reason diverged or off_start_point)",
    )
    included: list[str] = Field(
        default_factory=list, description="Files copied in by .worktreeinclude and its keys"
    )
    setup: list[SetupStep] = Field(default_factory=list)
    ports: list[int] = Field(
        default_factory=list, description="The block of ports held: [first, last]; [] for none"
    )


class TaskRecord(_Model):
    id: str
    wave: int
    status: TaskStatus = TaskStatus.PENDING
    reason: str | None = None
    error: str | None = None
    backend: str | None = None
    agent: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration_seconds: float | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    worktree: str | None = None
    branch: str | None = None
    start_point: str | None = None
    head: str | None = None
    commits: int = 0
    files_changed: list[str] = Field(default_factory=list)
    merged: bool = False
    merge_commit: str | None = None
    conflict_files: list[str] = Field(default_factory=list)
    marker: dict[str, Any] | None = None
    leftovers_committed: bool = False
    warnings: list[str] = Field(
        default_factory=list,
        description="What cpo noticed and handled: a marker in the start point or in the "
        "agent's commits, commits off the task branch, uncommitted submodule changes",
    )
    exit_code: int | None = None
    session_id: str | None = None
    turns: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    last_action: str | None = None
    log: str | None = None
    content_hash: str | None = None


class ValidationRecord(_Model):
    kind: Literal["python", "shell"]
    source: str


class WaveRecord(_Model):
    number: int
    status: WaveStatus = WaveStatus.PENDING
    tasks: list[str] = Field(default_factory=list)
    validation: list[ValidationRecord] = Field(default_factory=list)
    validation_exit_code: int | None = None
    validation_duration_seconds: float | None = None
    validation_output_tail: str | None = None
    note: str | None = None
    started_at: str | None = None
    finished_at: str | None = None


class Report(_Model):
    cpo_report_version: Literal[1] = REPORT_VERSION
    cpo_version: str
    spec_id: str
    parallel_dir: str
    status: RunStatus = RunStatus.RUNNING
    started_at: str
    finished_at: str | None = None
    pid: int | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    repository: str | None = None
    base_branch: str | None = None
    base_commit: str | None = None
    integration_branch: str | None = None
    integration_worktree: str | None = None
    integration_commit: str | None = None
    workspace_root: str | None = None
    waves: list[WaveRecord] = Field(default_factory=list)
    tasks: dict[str, TaskRecord] = Field(default_factory=dict)
    error: str | None = None
    paused_until: str | None = Field(
        default=None, description="Launches wait for a usage limit to lift until then"
    )
    next_step: str | None = Field(default=None, description="What the user should do next")
    journal_seq: int = Field(
        default=0, description="The last change of report.journal this file holds (cpo.run.journal)"
    )

    def totals(self) -> dict[str, float | int]:
        cost = sum(t.cost_usd or 0.0 for t in self.tasks.values())
        return {
            "tasks": len(self.tasks),
            "completed": sum(t.status == TaskStatus.COMPLETED for t in self.tasks.values()),
            "failed": sum(t.status == TaskStatus.FAILED for t in self.tasks.values()),
            "skipped": sum(t.status == TaskStatus.SKIPPED for t in self.tasks.values()),
            "cost_usd": round(cost, 6),
        }

    def wave(self, number: int) -> WaveRecord:
        return next(w for w in self.waves if w.number == number)


def status_words(rec: TaskRecord) -> str:
    """`failed (timeout)`; a reason that only repeats the status is not said twice."""
    reason = rec.reason if rec.reason and rec.reason != rec.status else None
    return str(rec.status) + (f" ({reason})" if reason else "")


def report_schema() -> dict[str, Any]:
    schema = Report.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "cpo report.json"
    return schema


def load_report(parallel_dir: Path) -> Report | None:
    """The last report written in `parallel_dir` with its journal's changes (cpo.run.journal)
    replayed, or None when there is none."""
    path = parallel_dir / REPORT_FILE
    if not path.exists():
        return None
    try:
        data = current(path)
        if isinstance(data, bytes):
            return Report.model_validate_json(data)
        return Report.model_validate(data)
    except (ValidationError, ValueError) as exc:
        first = str(exc).splitlines()[0]
        raise UsageError(
            f"{path}: not a cpo report ({first})",
            hint="`cpo clean` on this folder still finds the run's branches and worktrees "
            "(from the plan); move the file aside to start afresh with `cpo run`",
        ) from exc


class ReportWriter:
    """Owns the live Report: the only code that locks it and writes it.

    Every change goes through `update_task`, `update_wave` or `update` (the run's own
    fields), under the writer's lock; it marks the report dirty once the block ends (a
    block that raises marks nothing). A flusher thread writes at most every
    `FLUSH_INTERVAL` seconds; `save`, durable updates (each task's end) and `close` write
    at once. A write appends what changed to report.journal (cpo.run.journal); report.json
    is written whole at the start and end, after an `update`, and when the journal has
    grown as large. After a kill -9 they hold every task's end, the rest at most one
    interval old, which --resume reconciles with git like any other.
    """

    # The longest a change waits to reach the disk (`cpo status --watch` polls the file).
    FLUSH_INTERVAL = 0.15
    # A journal smaller than this is never worth a whole write (a small report).
    JOURNAL_MIN = 64 * 1024
    # report.json itself (for tools that read it, not its journal) lags this long, or a
    # thousand times what a whole write takes (13 s at 1,000 tasks), at most a minute: the
    # catch-up writes then cost about 0.1 % of a core whatever the report's size (cpo
    # itself uses a few per cent while agents work).
    WHOLE_INTERVAL = 5.0

    def __init__(
        self,
        report: Report,
        parallel_dir: Path,
        manifest: Path | None,
        on_write: Callable[[str], None] | None = None,
    ) -> None:
        self.report = report
        # Sees every version on disk, report.json with its journal replayed (tests check
        # and count them).
        self.on_write = on_write
        self.masker = Masker(os.environ)
        self.path = parallel_dir / REPORT_FILE
        self.journal = Journal(parallel_dir / JOURNAL_FILE)
        self.manifest = manifest
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._dirty = False
        self._whole = True  # the next write rewrites report.json whole
        self._whole_size = 0  # bytes of the last whole report.json
        self._whole_due = float("inf")  # when report.json is to catch up with its journal
        self._tasks: set[str] = set()  # changed since the last write
        self._waves: set[int] = set()
        self._closed = False
        self._last_write = float("-inf")  # the first change is written at once
        self._flusher: threading.Thread | None = None
        self._last_block: dict[str, Any] | None = None
        self._listed: set[str] = set()  # the failed and skipped tasks it names
        self._run: dict[str, Any] = {}  # the run's own fields as last written
        # Whether this run has written its report, or has a change on the way to disk.
        self.written = False

    @contextlib.contextmanager
    def update(self, *, durable: bool = False) -> Iterator[Report]:
        """Change the report as a whole (run status, pause); it is written soon after, or
        before the block returns when `durable`: a state --resume must find after a kill
        (a task's end: without it a resumed run would do the task and its merge again)."""
        with self._changing(durable) as report:
            self._whole = True
            yield report

    @contextlib.contextmanager
    def update_task(self, task_id: str, *, durable: bool = False) -> Iterator[TaskRecord]:
        with self._changing(durable) as report:
            self._tasks.add(task_id)
            yield report.tasks[task_id]

    @contextlib.contextmanager
    def update_wave(self, number: int, *, durable: bool = False) -> Iterator[WaveRecord]:
        with self._changing(durable) as report:
            self._waves.add(number)
            yield report.wave(number)

    @contextlib.contextmanager
    def _changing(self, durable: bool) -> Iterator[Report]:
        with self._lock:
            yield self.report
            self._mark_dirty()
            if durable:
                self._flush()

    @contextlib.contextmanager
    def reading(self) -> Iterator[Report]:
        """Read several fields at once, with no change half made by another thread."""
        with self._lock:
            yield self.report

    def save(self) -> None:
        """Write the report now, whole, whatever is pending."""
        with self._lock:
            self._whole = True
            self._flush()

    def close(self) -> None:
        """Write what is pending, whole, and stop the flusher: the run has ended (or crashed)."""
        with self._lock:
            self._closed = True
            self._wake.notify_all()
            if self._dirty or self.journal.size:
                self._whole = True
                self._flush()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join()
        self.journal.close()

    def note_action(self, task_id: str, action: str) -> None:
        with self._lock:
            self.report.tasks[task_id].last_action = action
            self._tasks.add(task_id)
            self._mark_dirty()

    def _mark_dirty(self) -> None:
        self._dirty = True
        self.written = True
        if self._closed:  # a change after the end (a late thread): no flusher any more
            self._whole = True
            self._flush()
            return
        if self._flusher is None:
            self._flusher = threading.Thread(
                target=self._flush_loop, name="cpo-report-writer", daemon=True
            )
            self._flusher.start()
        self._wake.notify_all()

    def _flush_loop(self) -> None:
        with self._lock:
            while not self._closed:
                if self._dirty:
                    delay = self._last_write + self.FLUSH_INTERVAL - time.monotonic()
                elif self.journal.size:
                    delay = self._whole_due - time.monotonic()  # then written whole
                else:
                    self._wake.wait()
                    continue
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                try:
                    self._flush()
                except OSError as exc:  # a full disk: keep the change, try again later
                    self._last_write = time.monotonic()
                    log.warning("could not write %s: %s", self.path, exc)

    def _flush(self) -> None:
        r = self.report
        r.journal_seq += 1
        started = time.monotonic()
        big = self.journal.size > max(self._whole_size, self.JOURNAL_MIN)
        if self._whole or big or started >= self._whole_due:
            text = self.masker.mask(r.model_dump_json(indent=2))
            atomic_write(self.path, text + "\n")  # before the journal starts again
            self.journal.restart(run_id({"pid": r.pid, "started_at": r.started_at}), r.journal_seq)
            self._whole, self._whole_size = False, len(text)
            self._run = r.model_dump(mode="json", exclude={"tasks", "waves", "journal_seq"})
            took = time.monotonic() - started
            self._whole_due = started + min(60.0, max(self.WHOLE_INTERVAL, 1000 * took))
        else:
            run = r.model_dump(mode="json", exclude={"tasks", "waves", "journal_seq"})
            run, self._run = {k: v for k, v in run.items() if self._run.get(k) != v}, run
            waves = {str(n): r.wave(n).model_dump(mode="json") for n in self._waves}
            tasks = {t: r.tasks[t].model_dump(mode="json") for t in self._tasks}
            self.journal.append(self.masker.mask(entry(r.journal_seq, run, waves, tasks)))
            text = ""
        # The manifest's block names failed and skipped tasks: only such a task's change
        # (or a wave's, or the run's) can change it; computing it costs O(tasks).
        listed = (TaskStatus.FAILED, TaskStatus.SKIPPED)
        if (
            text
            or self._waves
            or any(r.tasks[t].status in listed or t in self._listed for t in self._tasks)
        ):
            self._write_execution_block()
        self._tasks.clear()
        self._waves.clear()
        self.written = True
        if self.on_write is not None:
            self.on_write(text or load_report(self.path.parent).model_dump_json(indent=2))  # type: ignore[union-attr]
        self._dirty = False
        self._last_write = time.monotonic()

    def _execution_block(self) -> dict[str, Any]:
        r = self.report
        return {
            "status": r.status,
            "started_at": r.started_at,
            "finished_at": r.finished_at,
            "workspace_root": r.workspace_root,
            "integration_branch": r.integration_branch,
            "options": r.options,
            "waves": [{"number": w.number, "status": w.status} for w in r.waves],
            "failed_tasks": [t.id for t in r.tasks.values() if t.status == TaskStatus.FAILED],
            "skipped_tasks": [t.id for t in r.tasks.values() if t.status == TaskStatus.SKIPPED],
            "report": REPORT_FILE,
        }

    def _write_execution_block(self) -> None:
        """Keep every other byte of manifest.json; only `execution` changes, and only when
        the block itself changes: task-level detail lives in report.json."""
        if self.manifest is None:
            return
        block = self._execution_block()
        self._listed = {*block["failed_tasks"], *block["skipped_tasks"]}
        if block != self._last_block and write_execution_block(self.manifest, block):
            self._last_block = block
