"""The orphan killer: nothing a run starts outlives it, even when cpo is killed.

A separate process in its own session, run by path (`python watchdog.py GRACE RUN_ID`, no
import of cpo: standard library only). cpo tells it each process group it starts ("+PGID",
"-PGID" lines on stdin). Its stdin's only writer is cpo, so end-of-file means cpo is gone,
even by SIGKILL, or its run ended: it then stops every group it was told about and every
process whose environment carries the run's tag (`CPO_RUN_ID=<id>`, which cpo.proc gives
each process it starts). The tag finds what left its group (`setsid`, a daemon's double
fork) and lives on with the environment it inherited. TERM first, KILL after the grace.

Importable too: cpo.proc starts it (`Watchdog`) and `tagged_pids` reads the tags.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

RUN_ID_VAR = "CPO_RUN_ID"
_PROC = "/proc"


def tagged_pids(run_id: str) -> set[int]:
    """Live processes (not zombies: those have no environment) tagged with `run_id`.

    Linux only (/proc); elsewhere empty: the groups cpo told about are all it has.
    """
    needle = f"\0{RUN_ID_VAR}={run_id}\0".encode()
    me = os.getpid()
    found = set()
    with contextlib.suppress(OSError):
        for name in os.listdir(_PROC):
            if not name.isdigit() or int(name) == me:
                continue
            try:
                with open(f"{_PROC}/{name}/environ", "rb") as fh:
                    env = b"\0" + fh.read()
            except OSError:  # gone, or another user's
                continue
            if needle in env:
                found.add(int(name))
    return found


def _signal_all(groups: set[int], pids: set[int], sig: int) -> set[int]:
    """Send `sig` to each group and process; the groups that still exist."""
    alive = set()
    for group in groups:
        try:
            os.killpg(group, sig)
            alive.add(group)
        except OSError:
            pass
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)
    return alive


def stop_everything(groups: set[int], run_id: str, grace: float) -> None:
    """TERM to every group and tagged process, KILL to what is left after `grace`."""
    groups = _signal_all(groups, tagged_pids(run_id), signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        groups = _signal_all(groups, set(), 0)
        if not groups and not tagged_pids(run_id):
            return
        time.sleep(0.1)
    _signal_all(groups, tagged_pids(run_id), signal.SIGKILL)


def main(argv: list[str]) -> None:
    grace, run_id = float(argv[1]), argv[2]
    groups: set[int] = set()
    for line in sys.stdin:
        line = line.strip()
        if line[:1] == "+":
            groups.add(int(line[1:]))
        elif line[:1] == "-":
            groups.discard(int(line[1:]))
    stop_everything(groups, run_id, grace)


class Watchdog:
    """cpo's side: start the watchdog process, tell it each group, stop it at the end."""

    def __init__(self, grace: float, run_id: str) -> None:
        self.grace = grace
        self.run_id = run_id
        self._lock = threading.Lock()
        self._groups: set[int] = set()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        """Start it (once), telling it the groups registered so far."""
        with self._lock:
            if self._proc is not None:
                return
            self._proc = subprocess.Popen(
                # -I: isolated, so this folder (cpo's modules) does not shadow the stdlib.
                [sys.executable, "-I", os.path.abspath(__file__), str(self.grace), self.run_id],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C to our group must not kill it first
                close_fds=True,
            )
            for group in self._groups:
                self._write(f"+{group}")

    def tell(self, group: int, *, alive: bool) -> None:
        with self._lock:
            (self._groups.add if alive else self._groups.discard)(group)
            self._write(f"{'+' if alive else '-'}{group}")

    def _write(self, line: str) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            return
        with contextlib.suppress(OSError, ValueError):
            proc.stdin.write(line.encode() + b"\n")
            proc.stdin.flush()

    def stop(self) -> None:
        """End of the run: it stops what is left (tagged escapees) and exits; wait for it."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError, ValueError):
            if proc.stdin:
                proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=self.grace + 2)


if __name__ == "__main__":
    main(sys.argv)
