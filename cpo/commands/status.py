"""`cpo status`: what a run is doing (or did), read from another terminal.

report.json says what the run last wrote; the run lock says whether its process is still
there. A report that says "running" whose lock holder is gone is a run that was killed
(crash, `kill -9`, closed terminal): it is shown as stopped, with the way to continue.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from cpo.errors import ExitCode, UsageError
from cpo.run.lock import LockInfo, lock_held, read_lock
from cpo.run.report import REPORT_FILE, Report, load_report
from cpo.run.states import RunStatus, TaskStatus


@dataclass(frozen=True)
class Live:
    """The run's state as seen now, beyond what the report itself says."""

    state: RunStatus | Literal["starting", "stopped"]
    lock: LockInfo | None
    lock_alive: bool  # the lock file's flock is held: its owner is still running
    elapsed_seconds: float | None
    message: str
    next_step: str | None

    def data(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "lock": None
            if self.lock is None
            else {
                "pid": self.lock.pid,
                "host": self.lock.host,
                "started_at": self.lock.started_at,
                "alive": self.lock_alive,
            },
            "elapsed_seconds": self.elapsed_seconds,
            "message": self.message,
            "next_step": self.next_step,
        }

    @property
    def active(self) -> bool:
        """True while a cpo process is (or may be) still working on this directory."""
        return self.state in (RunStatus.RUNNING, "starting")


@dataclass(frozen=True)
class Status:
    parallel_dir: Path
    report: Report
    live: Live

    def data(self) -> dict[str, Any]:
        """`cpo status --json`: the report as written, plus the computed `live` field."""
        data = self.report.model_dump(mode="json")
        data["live"] = self.live.data()
        return data

    @property
    def exit_code(self) -> ExitCode:
        """0 while running or when completed; 1 when failed, interrupted or stopped."""
        return (
            ExitCode.OK
            if self.live.state in (RunStatus.RUNNING, "starting", RunStatus.COMPLETED)
            else (ExitCode.FAILED)
        )


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def seconds_between(
    start: str | None, end: str | None, now: datetime | None = None
) -> float | None:
    """Seconds from `start` to `end` (or to now when `end` is None)."""
    begin = parse_time(start)
    if begin is None:
        return None
    finish = parse_time(end) or now or datetime.now(timezone.utc)
    return max(0.0, (finish - begin).total_seconds())


def lock_state(parallel_dir: Path) -> tuple[LockInfo | None, bool]:
    """Who holds the run lock, and whether they still do (a held flock: the file's
    contents may be missing for a moment while a new owner writes them)."""
    lock = read_lock(parallel_dir)
    held = lock_held(parallel_dir)
    for _ in range(20):  # a new owner writes its pid right after locking
        if lock is not None or not held:
            break
        time.sleep(0.01)
        lock, held = read_lock(parallel_dir), lock_held(parallel_dir)
    return lock, held


def finished_report(parallel_dir: Path, *, no_run: str, wait_hint: str) -> Report:
    """The report of a run that is not going on now (clean and integrate need one)."""
    report = load_report(parallel_dir)
    if report is None:
        raise UsageError(no_run)
    live = compute_live(parallel_dir, report)
    if live.active:
        raise UsageError(f"{parallel_dir} is being run right now ({live.message})", hint=wait_hint)
    return report


def compute_live(parallel_dir: Path, report: Report) -> Live:
    lock, alive = lock_state(parallel_dir)
    resume = f"cpo run {parallel_dir} --resume"
    step: str | None
    state: RunStatus | Literal["starting", "stopped"]
    if report.status == RunStatus.RUNNING:
        end = None
        if alive:
            state = RunStatus.RUNNING
            message = f"running (pid {lock.pid})" if lock else "running"
            step = f"watch it: cpo status {parallel_dir} --watch"
        else:
            state = "stopped"
            message = f"stopped (cpo process gone) — continue with {resume}"
            step = f"continue with: {resume}"
            # The run ended without saying when: the last thing it recorded is the end.
            end = _last_time(report)
        elapsed = seconds_between(report.started_at, end)
    elif alive and lock is not None and lock.pid != report.pid:
        # A new `cpo run` holds the lock but has not written its first report yet.
        state = "starting"
        message = f"a new run is starting (pid {lock.pid}); the report below is the previous one"
        step = f"watch it: cpo status {parallel_dir} --watch"
        elapsed = seconds_between(report.started_at, report.finished_at)
    else:
        state = report.status
        message = str(report.status)
        step = report.next_step
        elapsed = seconds_between(report.started_at, report.finished_at)
    return Live(state, lock, alive, elapsed, message, step)


def _last_time(report: Report) -> str | None:
    times = [
        t
        for rec in report.tasks.values()
        for t in (rec.started_at, rec.finished_at)
        if t is not None
    ]
    times += [t for w in report.waves for t in (w.started_at, w.finished_at) if t is not None]
    parsed = [(parse_time(t), t) for t in times]
    known = [(p, t) for p, t in parsed if p is not None]
    return max(known)[1] if known else None


def read_status(parallel_dir: Path) -> Status:
    """The status of the run in `parallel_dir`; UsageError (exit 2) when there is no run yet."""
    parallel_dir = parallel_dir.resolve()
    if not parallel_dir.is_dir():
        raise UsageError(f"{parallel_dir}: no such directory")
    report = load_report(parallel_dir)
    if report is None:
        raise UsageError(f"no run yet in {parallel_dir}: start one with cpo run {parallel_dir}")
    return Status(parallel_dir, report, compute_live(parallel_dir, report))


def report_mtime(parallel_dir: Path) -> float | None:
    """When report.json last changed (the run rewrites it at every state change)."""
    try:
        return os.stat(parallel_dir / REPORT_FILE).st_mtime_ns / 1e9
    except OSError:
        return None


def clock_for(report: Report, state: str) -> datetime | None:
    """The "now" to measure running tasks against: for a run whose cpo is gone, the last
    time it recorded anything (its tasks stopped then); otherwise the real now (None)."""
    return parse_time(_last_time(report)) if state == "stopped" else None


def task_elapsed(report: Report, now: datetime | None = None) -> dict[str, float]:
    """Seconds each started task has run (so far, for running ones)."""
    result: dict[str, float] = {}
    for rec in report.tasks.values():
        if rec.status != TaskStatus.RUNNING and rec.duration_seconds is not None:
            result[rec.id] = rec.duration_seconds
            continue
        secs = seconds_between(
            rec.started_at, rec.finished_at if rec.status != TaskStatus.RUNNING else None, now
        )
        if secs is not None:
            result[rec.id] = secs
    return result


def wait_for_end(parallel_dir: Path, interval: float = 0.5) -> Status:
    """Poll until no cpo process is working on the directory (`--watch --json`)."""
    st = read_status(parallel_dir)
    while st.live.active:
        time.sleep(interval)
        try:
            st = read_status(parallel_dir)
        except UsageError:
            continue  # replaced mid-read: try again
    return st
