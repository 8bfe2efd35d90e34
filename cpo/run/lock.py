"""The run lock: one `cpo run` per parallel directory at a time.

A lock file holds the owner's pid, host and start time. A lock whose process is gone
(crash, `kill -9`) is taken over, and the caller says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cpo.errors import LockedError
from cpo.run.report import now_iso

LOCK_FILE = ".cpo.lock"


@dataclass(frozen=True)
class LockInfo:
    pid: int
    host: str
    started_at: str


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_lock(parallel_dir: Path) -> LockInfo | None:
    try:
        data = json.loads((parallel_dir / LOCK_FILE).read_text())
        return LockInfo(int(data["pid"]), str(data["host"]), str(data["started_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class RunLock:
    def __init__(self, parallel_dir: Path) -> None:
        self.path = parallel_dir / LOCK_FILE
        self.taken_over: LockInfo | None = None

    def acquire(self) -> None:
        me = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started_at": now_iso()})
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = read_lock(self.path.parent)
                if holder is None:
                    # Half-written by a process that died mid-write: stale.
                    with contextlib.suppress(FileNotFoundError):
                        self.path.unlink()
                    continue
                if holder.host == socket.gethostname() and not pid_alive(holder.pid):
                    self.taken_over = holder
                    with contextlib.suppress(FileNotFoundError):
                        self.path.unlink()
                    continue
                raise LockedError(
                    f"{self.path.parent} is being run by another cpo "
                    f"(pid {holder.pid} on {holder.host}, started {holder.started_at})",
                    hint="wait for it, watch it with `cpo status --watch`, "
                    f"or if that process is gone remove {self.path}",
                ) from None
            with os.fdopen(fd, "w") as fh:
                fh.write(me)
            return
        raise LockedError(f"could not take the run lock {self.path}")

    def release(self) -> None:
        holder = read_lock(self.path.parent)
        if holder is not None and holder.pid == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
