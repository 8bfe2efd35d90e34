"""The run lock: one `cpo run` per parallel directory at a time.

The lock is an `flock` on `.cpo.lock`, taken before anything is written to it. The kernel
drops it when its process ends however it ends (crash, `kill -9`), so a free flock is the
one sign of a stale lock and there is no window in which two processes both think they
hold it. The file also holds the owner's pid, host and start time, for `cpo status` and
for the error a second run prints; the owner writes them just after locking, so a reader
may find the file empty or half-written and must never decide liveness from it.

The owner removes the file on release, while still holding the flock: a process that
opened the file meanwhile notices, once it gets the flock, that the path now names
another file (or none) and tries again on the new one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from cpo.errors import LockedError
from cpo.run.report import now_iso

LOCK_FILE = ".cpo.lock"
# `cpo status` takes a shared flock for a moment to see whether the lock is held, and a
# new owner has not written its pid yet for a moment after locking: a busy lock whose file
# names no live process is tried again for this long before it counts as held.
CONTENTION_SECONDS = 1.0
_RETRY_SECONDS = 0.005


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


def _parse(text: str | bytes) -> LockInfo | None:
    try:
        data = json.loads(text)
        return LockInfo(int(data["pid"]), str(data["host"]), str(data["started_at"]))
    except (ValueError, KeyError, TypeError):
        return None


def read_lock(parallel_dir: Path) -> LockInfo | None:
    """Who wrote the lock file, if it is there and whole; says nothing about liveness."""
    try:
        return _parse((parallel_dir / LOCK_FILE).read_bytes())
    except OSError:
        return None


def lock_held(parallel_dir: Path) -> bool:
    """True while some process holds the run lock (the kernel's word, not the file's)."""
    try:
        fd = os.open(parallel_dir / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the shared lock, if we got it
    return False


def _is_at(fd: int, path: Path) -> bool:
    """Whether `fd` is still the file at `path` (its owner may have removed it)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (st.st_dev, st.st_ino)


class RunLock:
    def __init__(self, parallel_dir: Path) -> None:
        self.path = parallel_dir / LOCK_FILE
        # The owner that left the lock file behind without releasing it (it died).
        self.taken_over: LockInfo | None = None
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = self._lock_file()
        try:
            previous = _parse(os.pread(fd, 4096, 0))
            me = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": now_iso()}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self.taken_over = previous
        self._fd = fd

    def _lock_file(self) -> int:
        """Open the lock file and take its flock; the open descriptor holds the lock."""
        deadline = time.monotonic() + CONTENTION_SECONDS
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                holder = read_lock(self.path.parent)
                if _owner_evident(holder) or time.monotonic() >= deadline:
                    raise self._locked(holder) from None
                time.sleep(_RETRY_SECONDS)
                continue
            except BaseException:
                os.close(fd)
                raise
            if _is_at(fd, self.path):
                return fd
            os.close(fd)  # released and removed while we waited: lock the new file

    def _locked(self, holder: LockInfo | None) -> LockedError:
        who = (
            f"pid {holder.pid} on {holder.host}, started {holder.started_at}"
            if holder is not None
            else "its pid is not written yet"
        )
        return LockedError(
            f"{self.path.parent} is being run by another cpo ({who})",
            hint="wait for it, or watch it with `cpo status --watch`",
        )

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if _is_at(fd, self.path):
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
        finally:
            os.close(fd)


def _owner_evident(holder: LockInfo | None) -> bool:
    """The busy lock's file names a live process here: no need to wait and see."""
    return holder is not None and holder.host == socket.gethostname() and pid_alive(holder.pid)
