"""`cpo status`: what a run is doing (or did), read from another terminal.

report.json says what the run last wrote; the run lock says whether its process is still
there. A report that says "running" whose lock holder is gone is a run that was killed
(crash, `kill -9`, closed terminal): it is shown as stopped, with the way to continue.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from cpo.errors import CpoError, ExitCode, UsageError
from cpo.git import Git
from cpo.run.journal import JOURNAL_FILE
from cpo.run.lock import LockInfo, lock_held, read_lock
from cpo.run.nextstep import cpo_command, next_step
from cpo.run.report import REPORT_FILE, Report, load_report
from cpo.run.states import RunStatus, TaskStatus


class NoRunError(UsageError):
    """`cpo status` on a directory with no report yet (exit 2)."""

    def __init__(self, parallel_dir: Path) -> None:
        self.next_step = "start one: " + cpo_command("run", parallel_dir)
        super().__init__(f"no run yet in {parallel_dir}: {self.next_step}")


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


def finished_report(
    parallel_dir: Path, *, no_run: str, wait_hint: str, from_plan: bool = False
) -> Report:
    """The report of a run that is not going on now (clean and integrate need one).

    `from_plan`: when report.json is missing or unreadable, stand in a report built from
    the plan (the names a run of it gives its branches and worktrees), for `cpo clean`.
    """
    try:
        report = load_report(parallel_dir)
    except UsageError:
        if not from_plan:
            raise
        report = None
    if report is None:
        if not from_plan or not (parallel_dir / "manifest.json").exists():
            raise UsageError(no_run)
        report = planned_report(parallel_dir)
    live = compute_live(parallel_dir, report)
    if live.active:
        raise UsageError(f"{parallel_dir} is being run right now ({live.message})", hint=wait_hint)
    return report


def planned_report(parallel_dir: Path) -> Report:
    """The report a run of the plan would start with, marked as standing in for a lost one."""
    from cpo.run.engine import new_report
    from cpo.run.options import RunOptions, prepare

    opts = RunOptions()
    report = new_report(prepare(parallel_dir, opts), opts)
    report.status, report.pid = RunStatus.FAILED, None
    report.error = STAND_IN
    return report


# The `error` of a report made from the plan because report.json was missing or unreadable.
STAND_IN = "report.json missing or unreadable: names taken from the plan"


def compute_live(parallel_dir: Path, report: Report) -> Live:
    lock, alive = lock_state(parallel_dir)
    resume = cpo_command("run", parallel_dir, "--resume")
    watch = "watch it: " + cpo_command("status", parallel_dir, "--watch")
    step: str | None
    state: RunStatus | Literal["starting", "stopped"]
    if report.status == RunStatus.RUNNING:
        end = None
        if alive:
            state = RunStatus.RUNNING
            message = f"running (pid {lock.pid})" if lock else "running"
            step = watch
        else:
            state = "stopped"
            message = "stopped (cpo process gone)"
            step = f"continue with: {resume}"
            end = _iso(stopped_at(report, parallel_dir))
        elapsed = seconds_between(report.started_at, end)
    elif alive and lock is not None and lock.pid != report.pid:
        # A new `cpo run` holds the lock but has not written its first report yet.
        state = "starting"
        message = f"a new run is starting (pid {lock.pid}); the report below is the previous one"
        step = watch
        elapsed = seconds_between(report.started_at, report.finished_at)
    else:
        state = report.status
        message, step = _after_the_run(parallel_dir, report)
        elapsed = seconds_between(report.started_at, report.finished_at)
    return Live(state, lock, alive, elapsed, message, step)


def _after_the_run(parallel_dir: Path, report: Report) -> tuple[str, str | None]:
    """What an ended run is now: the report says how it ended, git says what happened
    since (`cpo integrate` and `cpo clean` do not rewrite the report)."""
    step = next_step(report, parallel_dir)
    integ, base = report.integration_branch, report.base_branch
    if report.status != RunStatus.COMPLETED or not (integ and base and report.repository):
        return str(report.status), step
    try:
        git = Git(Path(report.repository))
        landed = bool(report.integration_commit) and git.is_ancestor(
            report.integration_commit or "", f"refs/heads/{base}"
        )
        if not landed:
            if git.branch_exists(integ) or any(w.status == "pending" for w in report.waves):
                return str(report.status), step
            return (
                f"completed, but its integration branch {integ} is gone",
                "start again: " + cpo_command("run", parallel_dir),
            )
        leftovers = _leftovers(git, report)
    except (CpoError, OSError):
        return str(report.status), step  # the repository moved or is unreadable
    if leftovers:
        return (
            f"completed and integrated into {base}",
            "remove its worktrees and branches: " + cpo_command("clean", parallel_dir),
        )
    return f"completed, integrated into {base} and cleaned up", None


def _leftovers(git: Git, report: Report) -> list[str]:
    """The run's branches and worktrees still in the repository."""
    branches = git.local_branches()
    mine = [t.branch for t in report.tasks.values() if t.branch] + [report.integration_branch]
    registered = set(git.worktrees())
    paths = [t.worktree for t in report.tasks.values()] + [report.integration_worktree]
    return [b for b in mine if b in branches] + [
        p for p in paths if p and Path(p).resolve() in registered
    ]


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
        raise NoRunError(parallel_dir)
    return Status(parallel_dir, report, compute_live(parallel_dir, report))


def report_mtime(parallel_dir: Path) -> float | None:
    """When the report last changed: report.json or its journal (cpo.run.journal), which
    the run appends to at every state change."""
    times = []
    for name in (REPORT_FILE, JOURNAL_FILE):
        with contextlib.suppress(OSError):
            times.append(os.stat(parallel_dir / name).st_mtime_ns / 1e9)
    return max(times, default=None)


def clock_for(report: Report, state: str, parallel_dir: Path | None = None) -> datetime | None:
    """The "now" to measure running tasks against: for a run whose cpo is gone, when it
    last showed life (its tasks stopped then); otherwise the real now (None)."""
    return stopped_at(report, parallel_dir) if state == "stopped" else None


def stopped_at(report: Report, parallel_dir: Path | None) -> datetime | None:
    """When a run that ended without saying so (kill -9, a closed terminal) last did
    anything. The report records starts and ends only, but a run keeps touching its
    files while agents work (report.json with each agent action, logs/ as agents print),
    so the newest of those times is when it died, give or take a second."""
    times = [t for t in [parse_time(_last_time(report))] if t is not None]
    if parallel_dir is not None:
        files = [parallel_dir / REPORT_FILE, parallel_dir / JOURNAL_FILE]
        files += sorted((parallel_dir / "logs").glob("*.log*"))
        for path in files:
            with contextlib.suppress(OSError):
                times.append(datetime.fromtimestamp(path.stat().st_mtime, timezone.utc))
    return max(times, default=None)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


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
