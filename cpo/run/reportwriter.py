"""The writer of report.json: the only code that locks the live Report and saves it.

A save appends what changed to report.journal and rewrites report.json now and then
(cpo.run.journal); the records themselves are in cpo.run.report.
"""

from __future__ import annotations

import contextlib
import copy
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cpo.logfile import log
from cpo.run.execblock import write_execution_block
from cpo.run.journal import JOURNAL_FILE, Journal, atomic_write, run_id
from cpo.run.report import (
    REPORT_FILE,
    Report,
    TaskRecord,
    WaveRecord,
    load_report,
)
from cpo.run.reporttext import ReportText
from cpo.run.states import TaskStatus
from cpo.secrets import Masker

_NOT_RUN = frozenset({"tasks", "waves", "journal_seq"})  # journaled as records, or the seq


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
    # report.json itself (for tools that read it, not its journal) lags this long, or
    # WHOLE_FACTOR times what a whole write takes, at most a minute (a whole write takes
    # ~25 ms at 1,000 tasks -j 32 on a shared 2-core machine): the catch-up writes then
    # cost about 0.03 % of a core whatever the report's size. cpo itself uses ~8 % of a
    # core there, so they stay under half a per cent of cpo's CPU (a thousand times: 1.3 %).
    WHOLE_INTERVAL = 5.0
    WHOLE_FACTOR = 3000

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
        self.text = ReportText(self.masker)
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
        self._run: dict[str, Any] = {}  # the run's own fields as last written (a copy)
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
            text = self.text.whole(r)
            atomic_write(self.path, text + "\n")  # before the journal starts again
            self.journal.restart(run_id({"pid": r.pid, "started_at": r.started_at}), r.journal_seq)
            self.text.restarted()
            self._whole, self._whole_size = False, len(text)
            self._run = copy.deepcopy(self._run_fields())
            lag = self.WHOLE_FACTOR * (time.monotonic() - started)
            self._whole_due = started + min(60.0, max(self.WHOLE_INTERVAL, lag))
        else:
            run = self._run_changes()
            waves = [r.wave(n) for n in sorted(self._waves)]
            tasks = {t: r.tasks[t] for t in self._tasks}
            line, sent = self.text.entry(r.journal_seq, run, waves, tasks)
            try:
                self.journal.append(line)
            except OSError:
                # Maybe half a line on disk: readers stop there, so only a whole write
                # (which starts a new journal) makes the next changes visible.
                self._whole = True
                raise
            self.text.journaled(sent)
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

    def _run_fields(self) -> dict[str, Any]:
        """The run's own fields (not its tasks and waves), as the live objects."""
        r = self.report
        fields = {k: v for k, v in r.__dict__.items() if k not in _NOT_RUN}
        return fields | (r.__pydantic_extra__ or {})

    def _run_changes(self) -> dict[str, Any]:
        """The run's own fields that changed since last written, as JSON data. Compared
        as objects (a merge changes one commit; dumping the run at each write cost more
        than the change); only a changed field is copied and dumped."""
        now, last = self._run_fields(), self._run
        changed = {k for k, v in now.items() if k not in last or last[k] != v}
        if not changed:
            return {}
        last.update({k: copy.deepcopy(now[k]) for k in changed})  # options: a dict
        return self.report.model_dump(mode="json", include=changed)

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
