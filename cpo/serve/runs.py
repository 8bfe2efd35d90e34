"""Runs under the roots: found from report.json and the lock, started as real `cpo run`s.

Nothing about a run lives in the server: a run is a parallel directory with a report.json
(or a held lock) under one of the `--root`s, so runs started from a terminal show up and
a restarted server loses nothing. A run the API starts is `python -m cpo run <dir>` in its
own session (its own process group: a Ctrl-C to the server's terminal does not reach it,
and it outlives the server), with its own lock; cancel is SIGINT to the lock's owner,
exactly a Ctrl-C.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpo.commands.status import lock_state, read_status
from cpo.errors import CpoError
from cpo.run.lock import LOCK_FILE, lock_held
from cpo.run.report import REPORT_FILE, Report, load_report
from cpo.run.states import RunStatus
from cpo.serve.errors import ApiError
from cpo.serve.security import KEYS_ENV

# Folders never searched for runs: tools' caches, and dependencies.
SKIP_DIRS = frozenset({"node_modules", "__pycache__", "venv", "site-packages"})
MAX_DEPTH = 6
RESCAN_SECONDS = 2.0
# How long POST /runs waits for the new `cpo run` to pass its checks and write its report.
START_WAIT_SECONDS = 30.0
OUTPUT_FILE = "cpo-serve-run.out"  # the started process's stdout and stderr, in logs/


@dataclass(frozen=True)
class RunRef:
    id: str
    parallel_dir: Path
    root: Path


def run_id(parallel_dir: Path) -> str:
    """Stable across restarts: the folder's name and a digest of its resolved path."""
    digest = hashlib.sha256(str(parallel_dir).encode()).hexdigest()[:8]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", parallel_dir.name).strip("-") or "run"
    return f"{name}-{digest}"


def scan(roots: Iterable[Path]) -> dict[str, RunRef]:
    """Every folder under the roots that holds a report.json or a run lock."""
    found: dict[str, RunRef] = {}
    for root in roots:
        base_depth = len(root.parts)
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            if REPORT_FILE in filenames or LOCK_FILE in filenames:
                ref = RunRef(run_id(here), here, root)
                found.setdefault(ref.id, ref)
            if len(here.parts) - base_depth >= MAX_DEPTH:
                dirnames[:] = []
                continue
            # Hidden folders (.git, .venv) and linked worktrees (a `.git` file: a task's
            # checkout holds a copy of the plan, not a run) are skipped.
            dirnames[:] = [
                d
                for d in dirnames
                if not d.startswith(".")
                and d not in SKIP_DIRS
                and not (here / d / ".git").is_file()
            ]
    return found


class Catalog:
    """The runs under the roots, rescanned at most every RESCAN_SECONDS."""

    def __init__(self, roots: tuple[Path, ...]) -> None:
        self.roots = roots
        self._lock = threading.Lock()
        self._runs: dict[str, RunRef] = {}
        self._scanned = 0.0

    def all(self, *, fresh: bool = False) -> dict[str, RunRef]:
        with self._lock:
            if fresh or time.monotonic() - self._scanned > RESCAN_SECONDS:
                self._runs = scan(self.roots)
                self._scanned = time.monotonic()
            return dict(self._runs)

    def get(self, rid: str) -> RunRef:
        ref = self.all().get(rid) or self.all(fresh=True).get(rid)
        if ref is None:
            raise ApiError(404, f"no run {rid!r} under the roots", id=rid)
        return ref

    def add(self, parallel_dir: Path, root: Path) -> RunRef:
        ref = RunRef(run_id(parallel_dir), parallel_dir, root)
        with self._lock:
            self._runs[ref.id] = ref
        return ref


def light_state(parallel_dir: Path, report: Report | None) -> str:
    """The live state without asking git (for lists): `cpo status`'s words."""
    lock, alive = lock_state(parallel_dir)
    if report is None:
        return "starting" if alive else "stopped"
    if report.status == RunStatus.RUNNING:
        return "running" if alive else "stopped"
    if alive and lock is not None and lock.pid != report.pid:
        return "starting"
    return str(report.status)


def summary(ref: RunRef) -> dict[str, Any]:
    try:
        report = load_report(ref.parallel_dir)
    except CpoError:
        report = None
    base: dict[str, Any] = {
        "id": ref.id,
        "dir": str(ref.parallel_dir),
        "root": str(ref.root),
        "state": light_state(ref.parallel_dir, report),
    }
    if report is not None:
        base.update(
            spec_id=report.spec_id,
            status=str(report.status),
            started_at=report.started_at,
            finished_at=report.finished_at,
            pid=report.pid,
            waves=len(report.waves),
            totals=report.totals(),
        )
    return base


def detail(ref: RunRef) -> dict[str, Any]:
    """`cpo status --json` of the run, plus its id."""
    try:
        st = read_status(ref.parallel_dir)
    except CpoError as exc:
        raise ApiError(404, f"run {ref.id}: {exc.message}", id=ref.id) from None
    return {"id": ref.id, **st.data()}


def active(parallel_dir: Path) -> bool:
    return lock_held(parallel_dir)


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """The server's environment, less its own keys: agents have no business with them."""
    return {k: v for k, v in env.items() if k != KEYS_ENV}


def start(parallel_dir: Path, args: list[str], env: Mapping[str, str]) -> int:
    """Start `cpo run <dir> args...`; wait until it runs (its report names it) or fails.

    A run that stops before writing its report (bad plan, dirty tree, missing CLI) is an
    error whose message is what `cpo run` said; nothing was started.
    """
    if active(parallel_dir):
        raise ApiError(409, f"{parallel_dir} is being run right now", dir=str(parallel_dir))
    logs = parallel_dir / "logs"
    logs.mkdir(exist_ok=True)
    out_path = logs / OUTPUT_FILE
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cpo", "run", str(parallel_dir), *args],
            cwd=parallel_dir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=child_env(env),
            start_new_session=True,  # its own group: outlives the server, own Ctrl-C
        )
    # Reap it when it ends (a zombie would look alive to `kill -0`).
    threading.Thread(target=proc.wait, name=f"cpo-run-{proc.pid}", daemon=True).start()
    deadline = time.monotonic() + START_WAIT_SECONDS
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None and not _report_of(parallel_dir, proc.pid):
            said = _tail(out_path)
            status = 409 if "being run by another cpo" in said else 422 if code == 2 else 500
            raise ApiError(status, said or f"cpo run exited with {code}", exit_code=code)
        if code is not None or _report_of(parallel_dir, proc.pid):
            break
        time.sleep(0.05)
    return proc.pid


def _report_of(parallel_dir: Path, pid: int) -> bool:
    try:
        report = load_report(parallel_dir)
    except CpoError:
        return False
    return report is not None and report.pid == pid


def _tail(path: Path, lines: int = 10) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    kept = [
        line for line in text.splitlines() if line.strip() and not line.startswith("[PROGRESS]")
    ]
    return "\n".join(kept[-lines:])


def cancel(parallel_dir: Path) -> int:
    """SIGINT to the run's owner, as a Ctrl-C in its terminal: it stops its agents, writes
    `interrupted` and exits 130; `resume` continues it."""
    lock, alive = lock_state(parallel_dir)
    if not alive or lock is None:
        raise ApiError(409, "the run is not running", dir=str(parallel_dir))
    if lock.host != socket.gethostname():
        raise ApiError(409, f"the run belongs to host {lock.host}", dir=str(parallel_dir))
    try:
        os.kill(lock.pid, signal.SIGINT)
    except ProcessLookupError:
        raise ApiError(409, "the run has just ended", dir=str(parallel_dir)) from None
    return lock.pid


__all__ = ["Catalog", "RunRef", "cancel", "detail", "run_id", "scan", "start", "summary"]
