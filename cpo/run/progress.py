"""How a run shows its progress: a live table on a terminal, `[PROGRESS]` lines otherwise.

The plain lines are an interface (tools parse them); their form is fixed (README, `cpo run`):
  [PROGRESS] wave=1 task=task-001 status=started
  [PROGRESS] wave=1 task=task-001 status=completed commits=5
  [PROGRESS] wave=1 task=task-002 status=failed error=timeout
  [PROGRESS] wave=1 repair=1/2 status=started
  [PROGRESS] wave=1 repair=1/2 status=fixed
  [PROGRESS] wave=1 status=completed tasks=3/3
  [PROGRESS] execution status=completed
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol, TextIO

from cpo.run.report import Report, TaskRecord, status_words
from cpo.run.states import RunStatus, TaskStatus, WaveStatus

if TYPE_CHECKING:  # rich is imported where it draws: `--quiet` and `--json` never load it
    from rich.console import Console, Group
    from rich.table import Table
    from rich.text import Text

# Keyed by the status words (task, wave and run statuses share them).
STATUS_STYLE: dict[str, str] = {
    "pending": "dim",
    "running": "cyan",
    "completed": "green",
    "failed": "red",
    "skipped": "yellow",
    "interrupted": "magenta",
    "validating": "cyan",
}


class Progress(Protocol):
    def start(self) -> None: ...
    def task_started(self, rec: TaskRecord) -> None: ...
    def task_action(self, rec: TaskRecord) -> None: ...
    def task_finished(self, rec: TaskRecord) -> None: ...
    # Something that happened to a task besides its status: `words` end its line
    # (`status=conflict_predicted with=task-001 files=a.py`; cpo.run.conflicts).
    def task_event(self, rec: TaskRecord, words: str) -> None: ...
    def wave_changed(self, number: int, status: WaveStatus, done: int, total: int) -> None: ...
    def wave_repair(self, number: int, attempt: int, total: int, outcome: str | None) -> None:
        """A repair of the wave's failed validation started (outcome None) or ended."""
        ...

    def finished(self, status: RunStatus) -> None: ...
    def stop(self) -> None: ...


class SilentProgress:
    def start(self) -> None: ...
    def task_started(self, rec: TaskRecord) -> None: ...
    def task_action(self, rec: TaskRecord) -> None: ...
    def task_finished(self, rec: TaskRecord) -> None: ...
    def task_event(self, rec: TaskRecord, words: str) -> None: ...
    def wave_changed(self, number: int, status: WaveStatus, done: int, total: int) -> None: ...
    def wave_repair(self, number: int, attempt: int, total: int, outcome: str | None) -> None: ...
    def finished(self, status: RunStatus) -> None: ...
    def stop(self) -> None: ...


class PlainProgress(SilentProgress):
    """One line per event, flushed at once, for tools reading a pipe."""

    def __init__(self, out: TextIO | None = None, labels: Mapping[str, str] | None = None) -> None:
        self.out = out or sys.stdout
        self.lock = threading.Lock()
        # Task id -> words added at the end of its lines (a plan file's `stream=NAME`).
        self.labels = labels or {}

    def _emit_task(self, rec: TaskRecord, line: str) -> None:
        label = self.labels.get(rec.id)
        self._emit(f"{line} {label}" if label else line)

    def _emit(self, line: str) -> None:
        with self.lock:
            self.out.write(f"[PROGRESS] {line}\n")
            self.out.flush()

    def task_started(self, rec: TaskRecord) -> None:
        self._emit_task(rec, f"wave={rec.wave} task={rec.id} status=started")

    def task_finished(self, rec: TaskRecord) -> None:
        if rec.status == TaskStatus.COMPLETED:
            self._emit_task(
                rec, f"wave={rec.wave} task={rec.id} status=completed commits={rec.commits}"
            )
        else:
            error = f" error={rec.reason}" if rec.reason else ""
            self._emit_task(rec, f"wave={rec.wave} task={rec.id} status={rec.status}{error}")

    def task_event(self, rec: TaskRecord, words: str) -> None:
        self._emit_task(rec, f"wave={rec.wave} task={rec.id} {words}")

    def wave_changed(self, number: int, status: WaveStatus, done: int, total: int) -> None:
        if status in (WaveStatus.COMPLETED, WaveStatus.FAILED):
            self._emit(f"wave={number} status={status} tasks={done}/{total}")
        else:
            self._emit(f"wave={number} status={status}")

    def wave_repair(self, number: int, attempt: int, total: int, outcome: str | None) -> None:
        self._emit(f"wave={number} repair={attempt}/{total} status={outcome or 'started'}")

    def finished(self, status: RunStatus) -> None:
        self._emit(f"execution status={status}")


def _elapsed(rec: TaskRecord, now: float, started: dict[str, float]) -> str:
    if rec.duration_seconds is not None and rec.status != TaskStatus.RUNNING:
        secs = rec.duration_seconds
    elif rec.id in started:
        secs = now - started[rec.id]
    else:
        return ""
    return f"{int(secs) // 60}:{int(secs) % 60:02d}"


# A table folded to fewer rows shows what is going on first, then what went wrong, then
# what is still to come; completed tasks last (a run of 1,000 tasks is mostly those).
_INTEREST = {
    TaskStatus.RUNNING: 0,
    TaskStatus.FAILED: 1,
    TaskStatus.INTERRUPTED: 1,
    TaskStatus.PENDING: 2,
    TaskStatus.SKIPPED: 3,
    TaskStatus.COMPLETED: 4,
}


def _interest(rec: TaskRecord) -> int:
    if rec.status == TaskStatus.COMPLETED and rec.predicted_conflicts and not rec.merged:
        return 1  # its merge is expected to conflict
    return _INTEREST.get(rec.status, 2)


def shown_tasks(report: Report, rows: int | None) -> tuple[list[TaskRecord], dict[str, int]]:
    """The task records a table of at most `rows` rows shows (all when None), in the
    report's order, and how many of each status it leaves out; one row is kept for
    saying so."""
    recs = list(report.tasks.values())
    if rows is None or len(recs) <= rows:
        return recs, {}
    ranked = sorted(range(len(recs)), key=lambda i: (_interest(recs[i]), i))
    keep = set(ranked[: max(1, rows - 1)])
    left: dict[str, int] = {}
    for i, rec in enumerate(recs):
        if i not in keep:
            left[str(rec.status)] = left.get(str(rec.status), 0) + 1
    return [rec for i, rec in enumerate(recs) if i in keep], left


def render_table(
    report: Report,
    started: dict[str, float] | None = None,
    rows: int | None = None,
    more: str = "",
) -> Table | Group:
    """The task table shared by the live view and `cpo status`: at most `rows` rows, the
    last saying what was left out (and `more`, how to see it). Drawing costs ~0.5 ms a
    row: a live view redrawn 4 times a second must not draw 1,000 of them."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    started = started or {}
    now = time.monotonic()
    table = Table(box=None, pad_edge=False, expand=False, header_style="bold")
    for col in ("task", "wave", "status", "elapsed", "commits", "cost", "last action"):
        table.add_column(col, no_wrap=col != "last action", overflow="ellipsis")
    shown, left = shown_tasks(report, rows)
    for rec in shown:
        table.add_row(
            rec.id,
            str(rec.wave),
            Text(status_words(rec), style=STATUS_STYLE.get(rec.status, "")),
            _elapsed(rec, now, started),
            str(rec.commits) if rec.commits else "",
            f"${rec.cost_usd:.2f}" if rec.cost_usd else "",
            _last_column(rec),
        )
    if not left:
        return table
    counts = ", ".join(f"{n} {status}" for status, n in left.items())
    folded = f"… {sum(left.values())} more tasks: {counts}" + (f" ({more})" if more else "")
    return Group(table, Text(folded, style="dim"))


def _last_column(rec: TaskRecord) -> Text:
    """The agent's last action; for a finished task not merged yet, the conflicts its merge
    is expected to meet (cpo.run.conflicts)."""
    from rich.text import Text

    if rec.predicted_conflicts and not rec.merged:
        said = "; ".join(
            f"{', '.join(p.files)} with {p.with_task or p.branch}" for p in rec.predicted_conflicts
        )
        return Text(f"conflict predicted: {said}"[:60], style="yellow")
    return Text((rec.last_action or "")[:60])


def render_waves(report: Report) -> Text:
    from rich.text import Text

    parts = []
    for w in report.waves:
        repair = w.repairs[-1] if w.repairs else None
        said = f" · repair {repair.number}: {repair.outcome}" if repair else ""
        parts.append(
            Text(f"wave {w.number}: {w.status}{said}", style=STATUS_STYLE.get(w.status, ""))
        )
    return Text("  ").join(parts)


_LIVE_LINES = 5  # the live view's lines besides task rows: title, waves, header, fold, cursor


class LiveProgress(SilentProgress):
    """A table redrawn a few times a second from the live report."""

    def __init__(self, get_report: Callable[[], Report], console: Console | None = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.get_report = get_report
        self.console = console or Console()
        self.started: dict[str, float] = {}
        self.live = Live(
            get_renderable=self._render, console=self.console, refresh_per_second=4, transient=False
        )

    def _render(self) -> Group:
        from rich.console import Group
        from rich.text import Text

        report = self.get_report()
        title = Text(f"cpo · {report.spec_id} · {report.status}", style="bold")
        # Rows beyond the screen are cropped anyway: only as many as fit are drawn.
        rows = max(5, self.console.height - _LIVE_LINES)
        table = render_table(report, self.started, rows, more="cpo status --all lists them")
        return Group(title, render_waves(report), table)

    def start(self) -> None:
        self.live.start()

    def task_started(self, rec: TaskRecord) -> None:
        self.started[rec.id] = time.monotonic()

    def stop(self) -> None:
        self.live.stop()
