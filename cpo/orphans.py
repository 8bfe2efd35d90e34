"""cpo as a child subreaper: what escapes an agent's process group still ends with the run.

An agent's process group is killed when it ends, but a descendant that called `setsid`
(or a daemon's double fork) is in no group cpo knows; when its parent exits it would be
re-parented to init and live on. With PR_SET_CHILD_SUBREAPER (Linux) it is re-parented to
cpo instead, so at the end of the run, and after an interrupt, cpo kills and reaps every
child it did not start itself. Elsewhere this is skipped: the run's environment tag
(cpo.watchdog) is then what finds such processes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time

_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


def _prctl(option: int, value: object) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def children() -> set[int]:
    """This process's children (Linux /proc; empty elsewhere)."""
    me, found = os.getpid(), set()
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as fh:
                    fields = fh.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if len(fields) > 1 and int(fields[1]) == me:
                found.add(int(name))
    return found


class Adopter:
    """Be the subreaper for one run; at its end, kill and reap what was adopted.

    `before`: children that existed already (cpo embedded in a longer-lived process,
    e.g. tests): never touched.
    """

    def __init__(self) -> None:
        was = ctypes.c_int(0)
        self.was_subreaper = _prctl(_PR_GET_CHILD_SUBREAPER, ctypes.pointer(was)) and bool(
            was.value
        )
        self.active = self.was_subreaper or _prctl(_PR_SET_CHILD_SUBREAPER, 1)
        self.before = children() if self.active else set()

    def finish(self, keep: set[int] | None = None) -> int:
        """Kill and reap every child not in `before` or `keep`; stop being a subreaper.
        Called when the run's own processes have all ended. Returns how many."""
        if not self.active:
            return 0
        spared = self.before | (keep or set())
        count = 0
        for _round in range(20):  # killing one may re-parent its own descendants to us
            adopted = children() - spared
            if not adopted:
                break
            for pid in adopted:
                _kill_and_reap(pid)
                count += 1
        if not self.was_subreaper:
            _prctl(_PR_SET_CHILD_SUBREAPER, 0)
            self.active = False
        return count


def _kill_and_reap(pid: int) -> None:
    with contextlib.suppress(OSError):
        group = os.getpgid(pid)
        if group == pid and group != os.getpgrp():  # it leads its own group (setsid)
            os.killpg(group, signal.SIGKILL)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.01)
