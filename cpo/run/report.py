"""report.json — the run's record and live status — and the manifest's `execution` block.

The report is rewritten atomically (temp file + rename) a moment after each state change
(changes made meanwhile share one write), so a reader (`cpo status`, a tool, a human) never
sees half a file, and a crash leaves a recent complete state behind for `--resume`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cpo.errors import UsageError
from cpo.logfile import log
from cpo.run.conflictrecord import ConflictRecord, PredictedConflict
from cpo.run.execblock import set_execution_block
from cpo.run.recovery import Nudge, RepairRecord
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
    nudges: list[Nudge] = Field(default_factory=list)


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
    predicted_conflicts: list[PredictedConflict] = Field(default_factory=list)
    conflicts: list[ConflictRecord] = Field(default_factory=list)
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
    out_of_scope: list[str] = Field(
        default_factory=list, description="Files changed outside the task's declared scope"
    )


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
    repairs: list[RepairRecord] = Field(default_factory=list)


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

    def totals(self) -> dict[str, float | int]:
        cost = sum(t.cost_usd or 0.0 for t in self.tasks.values())
        cost += sum(r.cost_usd or 0.0 for w in self.waves for r in w.repairs)
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


def atomic_write(path: Path, text: str) -> None:
    """Write via a temp file in the same folder and rename: readers see old or new, whole.

    The temp file is made with `os.open(..., 0o666)`, not mkstemp (always 0600), so what
    cpo writes follows the user's umask like any other tool's output.
    """
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load_report(parallel_dir: Path) -> Report | None:
    """The last report written in `parallel_dir`, or None when there is none."""
    path = parallel_dir / REPORT_FILE
    if not path.exists():
        return None
    try:
        return Report.model_validate_json(path.read_bytes())
    except (ValidationError, ValueError) as exc:
        first = str(exc).splitlines()[0]
        raise UsageError(
            f"{path}: not a cpo report ({first})",
            hint="`cpo clean` on this folder still finds the run's branches and worktrees "
            "(from the plan); move the file aside to start afresh with `cpo run`",
        ) from exc


class ReportWriter:
    """Owns the live Report: the only code that locks it and writes it.

    Every change goes through `update_task`, `update_wave` or `update`: the change is made
    under the writer's lock and marks the report dirty once the block ends (a block that
    raises marks nothing). A flusher thread writes the latest state at most every
    `FLUSH_INTERVAL` seconds: rewriting the whole report per change cost O(tasks) per
    change, quadratic over a run (1,004 writes, 264 MB at 200 tasks). `save` and durable
    updates write at once (the first report, before git is touched; each task's end);
    `close` writes what is pending when the run ends, is interrupted or crashes. After a
    kill -9 the file on disk is a whole report with every task's end in it, the rest at
    most one interval old, which --resume reconciles with git like any other.
    """

    # The longest a change waits to reach the disk (`cpo status --watch` polls the file).
    FLUSH_INTERVAL = 0.15

    def __init__(
        self,
        report: Report,
        parallel_dir: Path,
        manifest: Path | None,
        on_write: Callable[[str], None] | None = None,
    ) -> None:
        self.report = report
        self.on_write = on_write  # sees every version written (tests check and count them)
        self.masker = Masker(os.environ)
        self.path = parallel_dir / REPORT_FILE
        self.manifest = manifest
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._dirty = False
        self._closed = False
        self._last_write = float("-inf")  # the first change is written at once
        self._flusher: threading.Thread | None = None
        self._last_block: dict[str, Any] | None = None
        # Whether this run has written its report, or has a change on the way to disk.
        self.written = False

    @contextlib.contextmanager
    def update(self, *, durable: bool = False) -> Iterator[Report]:
        """Change the report as a whole (run status, pause); it is written soon after, or
        before the block returns when `durable`: a state --resume must find after a kill
        (a task's end: without it a resumed run would do the task and its merge again)."""
        with self._lock:
            yield self.report
            self._mark_dirty()
            if durable:
                self._flush()

    @contextlib.contextmanager
    def update_task(self, task_id: str, *, durable: bool = False) -> Iterator[TaskRecord]:
        with self.update(durable=durable) as report:
            yield report.tasks[task_id]

    @contextlib.contextmanager
    def update_wave(self, number: int, *, durable: bool = False) -> Iterator[WaveRecord]:
        with self.update(durable=durable) as report:
            yield report.wave(number)

    @contextlib.contextmanager
    def reading(self) -> Iterator[Report]:
        """Read several fields at once, with no change half made by another thread."""
        with self._lock:
            yield self.report

    def save(self) -> None:
        """Write the report now, whatever is pending."""
        with self._lock:
            self._flush()

    def close(self) -> None:
        """Write what is pending and stop the flusher: the run has ended (or crashed)."""
        with self._lock:
            self._closed = True
            self._wake.notify_all()
            if self._dirty:
                self._flush()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join()

    def note_action(self, task_id: str, action: str) -> None:
        with self._lock:
            self.report.tasks[task_id].last_action = action
            self._mark_dirty()

    def _mark_dirty(self) -> None:
        self._dirty = True
        self.written = True
        if self._closed:
            self._flush()  # a change after the end (a late thread): no flusher any more
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
                if not self._dirty:
                    self._wake.wait()
                    continue
                delay = self._last_write + self.FLUSH_INTERVAL - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                try:
                    self._flush()
                except OSError as exc:  # a full disk: keep the change, try again later
                    self._last_write = time.monotonic()
                    log.warning("could not write %s: %s", self.path, exc)

    def _flush(self) -> None:
        self._write(self.report.model_dump_json(indent=2))
        self._write_execution_block()
        self._dirty = False
        self._last_write = time.monotonic()

    def _write(self, text: str) -> None:
        text = self.masker.mask(text)  # agents echo keys in errors; reports are shared
        atomic_write(self.path, text + "\n")
        self.written = True
        if self.on_write is not None:
            self.on_write(text)

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
        """Keep every other byte of manifest.json; only `execution` changes.

        Written only when the block itself changes: task-level detail lives in report.json.
        """
        if self.manifest is None or not self.manifest.exists():
            return
        block = self._execution_block()
        if block == self._last_block:
            return
        try:
            text = set_execution_block(self.manifest.read_text(encoding="utf-8"), block)
        except (OSError, ValueError):
            return  # the loader accepted it at start; never fail a run over this block
        self._last_block = block
        atomic_write(self.manifest, text)
