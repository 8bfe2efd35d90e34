"""A run's live events, derived from report.json, numbered for Server-Sent Events.

Any run works, whoever started it: the events are the differences between successive
versions of its report (which `cpo run` rewrites at every state change, and with each
agent action), so nothing has to be told to the server. Each event has a sequence number,
one counter per run shared by every client: a client sees a `snapshot` (the report and
the state at number N), then N+1, N+2... with no gap; reconnecting with `Last-Event-ID`
continues where it stopped while the events are still kept, else starts with a snapshot.

`progress` events carry the same facts as `cpo run`'s `[PROGRESS]` lines (and the line
itself); `task`, `wave` and `run` events carry what changed (status, last action, cost...).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from cpo.errors import CpoError
from cpo.run.report import JOURNAL_FILE, REPORT_FILE, Report, TaskRecord, WaveRecord, load_report
from cpo.run.states import TaskStatus, WaveStatus
from cpo.serve.runs import RunRef, light_state

POLL_SECONDS = 0.2
STATE_SECONDS = 1.0  # how often the lock is looked at when the report did not change
KEEPALIVE_SECONDS = 15.0
IDLE_STOP_SECONDS = 5.0  # polling stops this long after the last client left
HISTORY = 10_000
ENDED = ("completed", "failed", "interrupted", "stopped")

TASK_FIELDS = (
    "status",
    "reason",
    "last_action",
    "cost_usd",
    "commits",
    "turns",
    "started_at",
    "finished_at",
    "duration_seconds",
)


@dataclass(frozen=True)
class Event:
    seq: int
    type: str
    data: dict[str, Any]


def task_data(rec: TaskRecord) -> dict[str, Any]:
    data = {f: getattr(rec, f) for f in TASK_FIELDS}
    data["status"] = str(rec.status)
    data.update(
        task=rec.id, wave=rec.wave, attempts=[a.model_dump(mode="json") for a in rec.attempts]
    )
    return data


def wave_data(w: WaveRecord) -> dict[str, Any]:
    return {"wave": w.number, **w.model_dump(mode="json")}


def _task_line(rec: TaskRecord) -> str | None:
    if rec.status == TaskStatus.RUNNING:
        return f"wave={rec.wave} task={rec.id} status=started"
    if rec.status == TaskStatus.COMPLETED:
        return f"wave={rec.wave} task={rec.id} status=completed commits={rec.commits}"
    if rec.status in (TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.INTERRUPTED):
        error = f" error={rec.reason}" if rec.reason else ""
        return f"wave={rec.wave} task={rec.id} status={rec.status}{error}"
    return None


def _wave_line(report: Report, w: WaveRecord) -> str | None:
    if w.status in (WaveStatus.COMPLETED, WaveStatus.FAILED):
        done = sum(
            report.tasks[t].status == TaskStatus.COMPLETED for t in w.tasks if t in report.tasks
        )
        return f"wave={w.number} status={w.status} tasks={done}/{len(w.tasks)}"
    return None if w.status == WaveStatus.PENDING else f"wave={w.number} status={w.status}"


def _progress(line: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    return "progress", {"line": f"[PROGRESS] {line}", **fields}


def diff(
    old: Report | None, new: Report, old_state: str | None, new_state: str
) -> list[tuple[str, dict[str, Any]]]:
    """The events that lead from (old, old_state) to (new, new_state), in a stable order:
    tasks (progress line first), then waves, then the run."""
    out: list[tuple[str, dict[str, Any]]] = []
    for rec in new.tasks.values():
        before = old.tasks.get(rec.id) if old is not None else None
        if before is not None and task_data(before) == task_data(rec):
            continue
        if before is None or before.status != rec.status:
            line = _task_line(rec)
            if line is not None:
                out.append(_progress(line, wave=rec.wave, task=rec.id, status=str(rec.status)))
        out.append(("task", task_data(rec)))
    old_waves = {w.number: w for w in old.waves} if old is not None else {}
    for w in new.waves:
        before_w = old_waves.get(w.number)
        if before_w is not None and before_w == w:
            continue
        if before_w is None or before_w.status != w.status:
            line = _wave_line(new, w)
            if line is not None:
                out.append(_progress(line, wave=w.number, status=str(w.status)))
        out.append(("wave", wave_data(w)))
    if old is None or old.status != new.status or old_state != new_state:
        if old is None or old.status != new.status:
            out.append(_progress(f"execution status={new.status}", status=str(new.status)))
        out.append(("run", {"status": str(new.status), "state": new_state}))
    return out


class Hub:
    """The events of one run: polls its report while anyone listens, keeps the history."""

    def __init__(self, ref: RunRef) -> None:
        self.ref = ref
        self.seq = 0
        self.history: deque[Event] = deque(maxlen=HISTORY)
        self.report: Report | None = None
        self.state = "starting"
        self.listeners = 0
        self._changed = asyncio.Condition()
        self._poller: asyncio.Task[None] | None = None
        self._stamp: tuple[int, ...] | None = None
        self._state_checked = 0.0

    def snapshot(self) -> Event:
        report = self.report.model_dump(mode="json") if self.report is not None else None
        return Event(
            self.seq, "snapshot", {"id": self.ref.id, "state": self.state, "report": report}
        )

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    async def refresh(self, *, force: bool = False) -> None:
        """Read the report if it changed (and the lock now and then); publish the events."""
        stamp: tuple[int, ...] | None = None
        with contextlib.suppress(OSError):
            st = os.stat(self.ref.parallel_dir / REPORT_FILE)
            stamp = (st.st_mtime_ns, st.st_size)
            with contextlib.suppress(OSError):  # appended to between whole writes
                more = os.stat(self.ref.parallel_dir / JOURNAL_FILE)
                stamp += (more.st_mtime_ns, more.st_size)
        now = time.monotonic()
        if not force and stamp == self._stamp and now - self._state_checked < STATE_SECONDS:
            return
        report, state = await asyncio.to_thread(self._read, stamp != self._stamp)
        self._stamp, self._state_checked = stamp, now
        if report is None:
            return
        events = diff(self.report, report, self.state if self.report else None, state)
        async with self._changed:
            for kind, data in events:
                self.seq += 1
                self.history.append(Event(self.seq, kind, data))
            self.report, self.state = report, state
            self._changed.notify_all()

    def _read(self, reload: bool) -> tuple[Report | None, str]:
        report = self.report
        if reload or report is None:
            with contextlib.suppress(CpoError, OSError):
                report = load_report(self.ref.parallel_dir) or report
        return report, light_state(self.ref.parallel_dir, report)

    async def _poll(self) -> None:
        idle_since: float | None = None
        while True:
            with contextlib.suppress(Exception):  # a half-moved folder: try again later
                await self.refresh()
            if self.listeners == 0:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > IDLE_STOP_SECONDS:
                    self._poller = None
                    return
            else:
                idle_since = None
            await asyncio.sleep(POLL_SECONDS)

    async def _wait_past(self, seq: int) -> bool:
        """Wait for an event after `seq`; False when none came within the keep-alive."""
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.seq > seq), KEEPALIVE_SECONDS
                )
            except asyncio.TimeoutError:
                return False
        return True

    async def listen(self, last_id: int | None = None) -> AsyncIterator[Event | None]:
        """The events from `last_id` on (or a snapshot first); None is a keep-alive tick.
        Ends after the run has ended and every event up to that was given."""
        self.listeners += 1
        try:
            await self.refresh(force=True)  # a new client sees the state of now
            if self._poller is None:
                self._poller = asyncio.create_task(self._poll())
            first = self.history[0].seq if self.history else self.seq + 1
            if last_id is None or not (first - 1 <= last_id <= self.seq):
                snap = self.snapshot()
                yield snap
                last_id = snap.seq
            while True:
                pending = [e for e in self.history if e.seq > last_id]
                for event in pending:
                    yield event
                    last_id = event.seq
                if self.ended and last_id >= self.seq:
                    return
                if not await self._wait_past(last_id):
                    yield None
        finally:
            self.listeners -= 1


class Hubs:
    def __init__(self) -> None:
        self._hubs: dict[str, Hub] = {}

    def get(self, ref: RunRef) -> Hub:
        hub = self._hubs.get(ref.id)
        if hub is None or hub.ref != ref:
            hub = self._hubs[ref.id] = Hub(ref)
        return hub


def sse(event: Event | None) -> str:
    """One Server-Sent Event (a comment for a keep-alive)."""
    if event is None:
        return ": keep-alive\n\n"
    data = json.dumps(event.data, separators=(",", ":"), ensure_ascii=False)
    return f"id: {event.seq}\nevent: {event.type}\ndata: {data}\n\n"


__all__ = ["Event", "Hub", "Hubs", "diff", "sse"]
