"""Blocks of TCP ports for running tasks: no two running tasks on the machine share one.

Two agents that each start a dev server or a test database on the project's default
port fight over it. Each running task instead holds a block of ports (`CPO_PORT_BASE`
.. `+CPO_PORT_COUNT-1`, `CPO_PORT` the first) that no other running task of any cpo
run on the machine holds. A block is held by an `flock` on its own file in a folder
shared by every cpo on the machine: the kernel releases it when the holder closes it or
dies, so a killed run never leaves a block taken. A block with a port something else
already listens on is passed over.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_FIRST, DEFAULT_LAST, DEFAULT_COUNT = 20000, 29999, 10


def ports_dir() -> Path:
    """The folder of block lock files, one for every user of the machine."""
    return Path(tempfile.gettempdir()) / "cpo-ports"


@dataclass
class PortBlock:
    """A held block of ports; `release` (or the process's end) frees it."""

    base: int
    count: int
    _fd: int

    def env(self) -> dict[str, str]:
        return {
            "CPO_PORT": str(self.base),
            "CPO_PORT_BASE": str(self.base),
            "CPO_PORT_COUNT": str(self.count),
        }

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the file releases its flock
            self._fd = -1


@dataclass(frozen=True)
class PortRange:
    """Where blocks are taken from: `count` ports each, within [first, last]."""

    first: int = DEFAULT_FIRST
    last: int = DEFAULT_LAST
    count: int = DEFAULT_COUNT

    def acquire(self) -> PortBlock | None:
        """The first free block, held; None when ports are off (count 0) or none is free."""
        if self.count <= 0:
            return None
        folder = ports_dir()
        _make_shared_dir(folder)
        for base in range(self.first, self.last - self.count + 2, self.count):
            fd = _try_lock(folder / f"{base}-{self.count}.lock")
            if fd is None:
                continue
            if all(_free(port) for port in range(base, base + self.count)):
                return PortBlock(base, self.count, fd)
            os.close(fd)
        return None


def _make_shared_dir(folder: Path) -> None:
    try:
        folder.mkdir(mode=0o1777, exist_ok=True)
        if folder.stat().st_uid == os.getuid():
            os.chmod(folder, 0o1777)  # mkdir's mode is cut by the umask
    except OSError:
        pass  # another user's folder: its files are readable, which is all flock needs


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on `path`, or None when another holder has it.

    Blocks of different sizes overlap without conflicting locks; the bind check below
    still passes over ports a server of such a block listens on.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError:
        return None
    try:
        # Each open() is its own lock holder, so two tasks of one run conflict too.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
            return None
        raise
    return fd


def _free(port: int) -> bool:
    """Whether nothing listens on `port` (on any address) right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("", port))
        except OSError:
            return False
    return True
